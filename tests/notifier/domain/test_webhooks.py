"""Standard Webhooks signing and verification, retry backoff and subscriber URL checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifier.domain.webhooks import (
    BACKOFF_CAP_S,
    HEADER_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SubscriberUrlError,
    WebhookVerificationError,
    backoff_delay,
    backoff_delays,
    decode_secret,
    new_secret,
    sign,
    signed_headers,
    validate_subscriber_url,
    verify,
)

# The Standard Webhooks specification's published test vector.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET = "whsec_" + base64.b64encode(b"a 32-byte key for the unit tests").decode()
BODY = '{"type":"stvs.deadline.approaching.v1","data":{"unit":"石家庄市科技志愿者支队"}}'.encode()
MSG_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
NOW = 1_777_000_000

Tamper = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]


def headers(secret: str = SECRET, msg_id: str = MSG_ID, timestamp: int = NOW, body: bytes = BODY) -> dict[str, str]:
    return signed_headers(secret, msg_id, timestamp, body)


# ---- signing ----


def test_sign_reproduces_the_specification_vector() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_sign_matches_an_hmac_computed_by_hand() -> None:
    key = b"a 32-byte key for the unit tests"
    content = f"{MSG_ID}.{NOW}.".encode() + BODY
    expected = "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    assert sign(SECRET, MSG_ID, NOW, BODY) == expected


def test_signed_headers_carry_id_timestamp_and_signature() -> None:
    assert headers() == {
        HEADER_ID: MSG_ID,
        HEADER_TIMESTAMP: str(NOW),
        HEADER_SIGNATURE: sign(SECRET, MSG_ID, NOW, BODY),
    }


def test_new_secret_is_fresh_and_usable() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(decode_secret(secret)) == 32
    assert secret != new_secret()
    verify(secret, headers(secret=secret), BODY, now=NOW)


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_"])
def test_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        sign(secret, MSG_ID, NOW, BODY)


# ---- verification ----


def test_verify_accepts_the_specification_vector() -> None:
    spec_headers = {HEADER_ID: SPEC_ID, HEADER_TIMESTAMP: str(SPEC_TIMESTAMP), HEADER_SIGNATURE: SPEC_SIGNATURE}
    verify(SPEC_SECRET, spec_headers, SPEC_BODY, now=SPEC_TIMESTAMP)


def test_verify_accepts_a_fresh_delivery_with_header_names_in_any_case() -> None:
    verify(SECRET, {name.title(): value for name, value in headers().items()}, BODY, now=NOW + 10)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda h, b: (h, b + b" "), "no matching signature"),
        (lambda h, b: (h, b.replace("石家庄".encode(), "唐山".encode())), "no matching signature"),
        (lambda h, b: ({**h, HEADER_ID: "another-id"}, b), "no matching signature"),
        (lambda h, b: ({**h, HEADER_TIMESTAMP: str(NOW + 1)}, b), "no matching signature"),
        (lambda h, b: ({**h, HEADER_SIGNATURE: h[HEADER_SIGNATURE][:-5] + "AAAA="}, b), "no matching signature"),
        (lambda h, b: ({**h, HEADER_SIGNATURE: h[HEADER_SIGNATURE].replace("v1,", "v2,")}, b), "no matching"),
        (lambda h, b: ({**h, HEADER_SIGNATURE: h[HEADER_SIGNATURE][3:]}, b), "no matching signature"),
        (lambda h, b: ({k: v for k, v in h.items() if k != HEADER_SIGNATURE}, b), "webhook-signature"),
        (lambda h, b: ({k: v for k, v in h.items() if k != HEADER_ID}, b), "webhook-id"),
        (lambda h, b: ({**h, HEADER_TIMESTAMP: "1777000000.5"}, b), "whole number"),
        (lambda h, b: ({**h, HEADER_TIMESTAMP: "-5"}, b), "whole number"),
    ],
)
def test_verify_refuses_tampered_deliveries(tamper: Tamper, message: str) -> None:
    tampered_headers, tampered_body = tamper(headers(), BODY)
    with pytest.raises(WebhookVerificationError, match=message):
        verify(SECRET, tampered_headers, tampered_body, now=NOW)


def test_verify_refuses_another_subscribers_secret() -> None:
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(new_secret(), headers(), BODY, now=NOW)


def test_timestamp_tolerance_is_inclusive_and_symmetric() -> None:
    verify(SECRET, headers(), BODY, now=NOW + 300)
    verify(SECRET, headers(), BODY, now=NOW - 300)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(SECRET, headers(), BODY, now=NOW + 301)
    with pytest.raises(WebhookVerificationError, match="future"):
        verify(SECRET, headers(), BODY, now=NOW - 301)
    verify(SECRET, headers(), BODY, tolerance_s=3600, now=NOW + 3000)


def test_a_signed_replay_after_the_tolerance_is_refused_with_the_real_clock() -> None:
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(SECRET, headers(timestamp=1_600_000_000), BODY)


def test_verify_accepts_any_of_several_signatures() -> None:
    # During key rotation a sender signs with the old and the new secret.
    old, new = new_secret(), SECRET
    signatures = f"v1a,ignoredAsymmetric== {sign(old, MSG_ID, NOW, BODY)} {sign(new, MSG_ID, NOW, BODY)}"
    verify(SECRET, {**headers(), HEADER_SIGNATURE: signatures}, BODY, now=NOW)
    verify(old, {**headers(), HEADER_SIGNATURE: signatures}, BODY, now=NOW)


# ---- backoff ----


class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_ceiling_doubles_from_one_second_up_to_ten_minutes() -> None:
    almost_one = Fixed(0.999999)
    ceilings = [round(backoff_delay(attempt, almost_one)) for attempt in range(12)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]
    assert backoff_delay(10_000, almost_one) < BACKOFF_CAP_S


def test_backoff_is_full_jitter() -> None:
    assert backoff_delay(5, Fixed(0.0)) == 0.0
    assert backoff_delay(5, Fixed(0.5)) == 16.0


def test_backoff_delays_lists_one_delay_per_retry() -> None:
    assert backoff_delays(4, Fixed(0.5)) == [0.5, 1.0, 2.0, 4.0]


@given(st.integers(min_value=0, max_value=200), st.integers())
def test_backoff_stays_within_bounds(attempt: int, seed: int) -> None:
    delay = backoff_delay(attempt, random.Random(seed))
    assert 0 <= delay < min(BACKOFF_CAP_S, 2.0**attempt)


def test_backoff_refuses_a_negative_attempt() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, Fixed(0.5))


# ---- subscriber URLs ----


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/stvs",
        "http://8.8.8.8:8080/hook",
        "https://[2001:4860:4860::8888]/hook",
        "HTTPS://Example.COM/Hook?x=1",
    ],
)
def test_public_http_urls_are_accepted_in_production(url: str) -> None:
    assert validate_subscriber_url(url, production=True) == url


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/hook", "file:///etc/passwd", "javascript:alert(1)", "example.com/hook", "", "gopher://x"],
)
def test_only_http_and_https_are_accepted(url: str) -> None:
    with pytest.raises(SubscriberUrlError, match="http"):
        validate_subscriber_url(url, production=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https:///no-host", "缺少主机名"),
        ("http://example.com:99999/", "格式不正确"),
        ("http://example.com:0/", "端口"),
        ("http://127.0.0.1\\@example.com/", "格式不正确"),
        ("http://exa mple.com/", "格式不正确"),
    ],
)
def test_malformed_urls_are_refused_with_chinese_messages(url: str, message: str) -> None:
    with pytest.raises(SubscriberUrlError, match=message):
        validate_subscriber_url(url, production=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost:8000/hook", "本机"),
        ("http://LOCALHOST./hook", "本机"),
        ("http://api.localhost/hook", "本机"),
        ("http://127.0.0.1/hook", "回环"),
        ("http://127.8.9.10/hook", "回环"),
        ("http://[::1]:9000/hook", "回环"),
        ("http://[::ffff:127.0.0.1]/hook", "回环"),
        ("http://2130706433/hook", "回环"),  # 127.0.0.1 as one number
        ("http://0x7f.1/hook", "回环"),
        ("http://127.1/hook", "回环"),
        ("http://user:pw@127.0.0.1/hook", "回环"),
        ("http://10.1.2.3/hook", "内网"),
        ("http://172.16.0.1/hook", "内网"),
        ("http://192.168.1.10/hook", "内网"),
        ("http://[fd00::1]/hook", "内网"),
        ("http://100.64.0.1/hook", "内网或保留"),
        ("http://169.254.169.254/latest/meta-data", "链路本地"),
        ("http://[fe80::1%25eth0]/hook", "链路本地"),
        ("http://0.0.0.0:8000/hook", "未指定"),
        ("http://[::]/hook", "未指定"),
    ],
)
def test_production_refuses_local_and_private_addresses(url: str, message: str) -> None:
    with pytest.raises(SubscriberUrlError, match=message):
        validate_subscriber_url(url, production=True)
    assert validate_subscriber_url(url, production=False) == url


def test_hostnames_are_not_resolved() -> None:
    # A name is checked literally; resolving it here would be I/O, and it could be re-pointed afterwards.
    assert validate_subscriber_url("https://intranet.example.cn/hook", production=True)
