"""The signed identity is bound to one service and one request and lives seconds (pure rules, no I/O)."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from shared.identity import (
    HEADER,
    IDENTITY_SKEW_S,
    IDENTITY_TTL_S,
    Identity,
    SignedIdentity,
    acting_as,
    body_digest,
    read_identity,
    sign_identity,
)
from shared.problems import Problem

SECRET = "a-test-internal-token-0123456789abcdefXYZ"
ADMIN = Identity(subject="a1", role="unit_admin", unit_id="C1")


def signed(**over: object) -> str:
    args: dict[str, object] = {"service": "registry", "method": "GET", "target": "/units/C1?fields=name"}
    args.update(over)
    return sign_identity(ADMIN, SECRET, **args)  # type: ignore[arg-type]


def read(token: str, **over: object) -> tuple[Identity, str | None]:
    args: dict[str, object] = {"service": "registry", "method": "GET", "target": "/units/C1?fields=name"}
    args.update(over)
    return read_identity(token, SECRET, **args)  # type: ignore[arg-type]


def test_a_header_is_read_back_for_the_request_it_was_signed_for() -> None:
    identity, digest = read(signed())
    assert identity == ADMIN and digest is None


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"service": "activities"}, "其他服务"),
        ({"method": "DELETE"}, "其他请求"),
        ({"target": "/units/C2?fields=name"}, "其他请求"),
        ({"target": "/units/C1"}, "其他请求"),
        ({"target": "/units/C1?fields=name&fields=leaders"}, "其他请求"),
    ],
)
def test_a_header_replayed_against_another_service_or_request_is_refused(over: dict[str, str], words: str) -> None:
    with pytest.raises(Problem) as refused:
        read(signed(), **over)
    assert refused.value.status == 401 and refused.value.code == "bad_identity"
    assert words in refused.value.detail


def test_a_header_lives_seconds_not_a_minute() -> None:
    token = signed()
    now = time.time()
    read(token, at=now + IDENTITY_TTL_S)  # still valid at the end of its life (within the skew)
    with pytest.raises(Problem):
        read(token, at=now + IDENTITY_TTL_S + IDENTITY_SKEW_S + 2)
    with pytest.raises(Problem):
        read(token, at=now - IDENTITY_SKEW_S - 2)  # signed "in the future"
    with pytest.raises(Problem):
        read(signed(ttl_s=3600))  # a long-lived one is refused whoever signed it


def test_a_header_of_another_secret_or_without_the_binding_is_refused() -> None:
    with pytest.raises(Problem):
        read(
            sign_identity(ADMIN, "another-secret-0123456789abcdefghijkl", service="registry", method="GET", target="/")
        )
    now = int(time.time())
    old_style = jwt.encode({**ADMIN.model_dump(), "iat": now, "exp": now + 5, "aud": "stvs-internal"}, SECRET)
    with pytest.raises(Problem):
        read(old_style)


def test_the_client_auth_signs_each_request_with_its_body() -> None:
    auth = SignedIdentity(SECRET, "activities")
    request = httpx.Request(
        "POST", "http://a/activities/x%2Fy/signups?notify=1", json={"volunteer_id": "V1"}, headers=acting_as(ADMIN)
    )
    sent = next(auth.auth_flow(request))
    assert "x-stvs-acting-as" not in sent.headers
    identity, digest = read_identity(
        sent.headers[HEADER], SECRET, service="activities", method="POST", target="/activities/x%2Fy/signups?notify=1"
    )
    assert identity == ADMIN and digest == body_digest(request.content)
