"""Webhook rules with no I/O: Standard Webhooks signing and verification, backoff, subscriber URL checks.

Signing follows https://www.standardwebhooks.com: HMAC-SHA256 over "<msg_id>.<timestamp>.<body>" with the
base64-decoded part of a "whsec_" secret, sent as "v1,<base64>" in `webhook-signature`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets
import socket
import time
from collections.abc import Iterable, Mapping
from typing import Protocol
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SECRET_PREFIX = "whsec_"  # noqa: S105 (a format prefix, not a secret)
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
DEFAULT_TOLERANCE_S = 300
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 600.0

# Numeric host forms that resolvers read as IPv4 (inet_aton): "2130706433", "0x7f.1", "127.1".
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|\d+)(\.(0x[0-9a-f]*|\d+)){0,3}\.?$", re.IGNORECASE)


class WebhookVerificationError(ValueError):
    """A delivery whose signature, timestamp or headers do not verify."""


class SubscriberUrlError(ValueError):
    """A subscriber URL that is refused; the message is user-facing (Chinese)."""


class RandomSource(Protocol):
    """Anything with `random() -> float` in [0, 1): `random.Random`, or a stub in tests."""

    def random(self) -> float: ...


# ---- signing ----


def new_secret(num_bytes: int = 32) -> str:
    """A fresh subscriber secret, "whsec_<base64>"."""
    if not 24 <= num_bytes <= 64:
        raise ValueError("a webhook secret should have 24-64 random bytes")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(num_bytes)).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a "whsec_<base64>" secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret must be base64 after the prefix") from exc
    if not key:
        raise ValueError("a webhook secret must not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value "v1,<base64 HMAC-SHA256>" of one delivery."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one delivery."""
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    *,
    now: float | None = None,
) -> None:
    """Raise `WebhookVerificationError` unless one "v1" signature in the headers matches and the timestamp
    is within `tolerance_s` of `now` (either direction; default: the current time). Header names are
    case-insensitive; the signature header may carry several space-separated signatures (key rotation).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [h for h in (HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE) if not lowered.get(h)]
    if missing:
        raise WebhookVerificationError(f"missing header(s): {', '.join(missing)}")
    raw_timestamp = lowered[HEADER_TIMESTAMP].strip()
    if not raw_timestamp.isascii() or not raw_timestamp.isdigit():
        raise WebhookVerificationError("webhook-timestamp is not a whole number of seconds")
    timestamp = int(raw_timestamp)
    current = time.time() if now is None else now
    if timestamp < current - tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is too old")
    if timestamp > current + tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is too far in the future")
    expected = sign(secret, lowered[HEADER_ID], timestamp, body).encode("ascii")
    for candidate in lowered[HEADER_SIGNATURE].split():
        version, _, _ = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(candidate.encode("utf-8"), expected):
            return
    raise WebhookVerificationError("no matching signature")


# ---- retries ----


def backoff_delay(
    attempt: int, rng: RandomSource, base_s: float = BACKOFF_BASE_S, cap_s: float = BACKOFF_CAP_S
) -> float:
    """Seconds to wait before retry number `attempt` (0 = first retry): full jitter, uniform in
    [0, min(cap, base * 2**attempt)).
    """
    if attempt < 0:
        raise ValueError("attempt must not be negative")
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt, 64))
    return ceiling * rng.random()


def backoff_delays(attempts: int, rng: RandomSource) -> list[float]:
    """The delays before retries 0..attempts-1 (see `backoff_delay`)."""
    return [backoff_delay(attempt, rng) for attempt in range(attempts)]


# ---- subscriber URLs ----


def validate_subscriber_url(url: str, production: bool) -> str:
    """Return `url` if a webhook may be delivered there, else raise `SubscriberUrlError` (Chinese message).

    Always: http or https with a host. In production also no loopback, private, link-local, unspecified or
    other non-global address, and no "localhost". Only literal addresses are checked (no DNS lookup here:
    that is I/O, and a name could be re-pointed after the check anyway).
    """
    # Parsers disagree on backslashes and blanks ("http://127.0.0.1\@example.com"): refuse them outright.
    if any(char in url for char in "\\ \t\r\n"):
        raise SubscriberUrlError(f"订阅地址格式不正确：{url}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SubscriberUrlError(f"订阅地址格式不正确：{url}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise SubscriberUrlError("订阅地址必须以 http:// 或 https:// 开头")
    host = parts.hostname
    if not host:
        raise SubscriberUrlError("订阅地址缺少主机名")
    if port == 0:
        raise SubscriberUrlError("订阅地址的端口不正确")
    if not production:
        return url
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        raise SubscriberUrlError("生产环境中订阅地址不能指向本机（localhost）")
    address = _literal_address(host)
    if address is None:
        return url
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        raise SubscriberUrlError(f"生产环境中订阅地址不能指向本机回环地址（{address}）")
    if address.is_link_local:
        raise SubscriberUrlError(f"生产环境中订阅地址不能指向链路本地地址（{address}）")
    if address.is_unspecified:
        raise SubscriberUrlError(f"生产环境中订阅地址不能使用未指定地址（{address}）")
    if address.is_private or not address.is_global:
        raise SubscriberUrlError(f"生产环境中订阅地址不能指向内网或保留地址（{address}）")
    return url


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone ("fe80::1%eth0") is not an address
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


# ---- delivery addresses ----


def refused_reason(address: Address, allowed: Iterable[Network]) -> str | None:
    """Why a delivery may not go to ``address`` (Chinese), or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in net for net in allowed):
        return None
    if address.is_loopback or address.is_unspecified:
        return f"订阅地址解析到本机地址（{address}），已拒绝投递"
    if address.is_private or address.is_link_local or not address.is_global:
        return f"订阅地址解析到内网或保留地址（{address}），已拒绝投递"
    return None
