"""The caller's identity as the gateway forwards it to internal services.

The gateway signs the identity (role, unit, volunteer) with the internal token, bound to one request: the target
service, the method, the path with its query and, when the gateway holds the body, a digest of it. The signature
lives :data:`IDENTITY_TTL_S` seconds. A service refuses a call that does not carry a valid one, one signed for
another service, or one signed for another request — so a header seen on the internal network cannot be replayed
against another route or service, and internal APIs are useless to anyone who goes around the gateway.

Callers that talk to a service with ``httpx`` (a service calling another, tests, benchmarks) sign every request
with :class:`SignedIdentity` as the client's ``auth``; :func:`acting_as` names who a single request acts as.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Generator, Mapping
from typing import Annotated, Any, Literal

import httpx
import jwt
from fastapi import Depends, Request
from pydantic import BaseModel

from shared.problems import Problem

HEADER = "X-STVS-Identity"
ACTING_AS = "X-STVS-Acting-As"  # client side only: who a request acts as; SignedIdentity replaces it, never sent
Role = Literal["province_admin", "unit_admin", "volunteer", "system"]
IDENTITY_TTL_S = 10  # a signed identity is valid this long after it was signed …
IDENTITY_SKEW_S = 2  # … give or take this much clock difference between the hosts
ARRIVED = "stvs.arrived"  # the request scope's key for the wall-clock time its headers arrived
_AUDIENCE = "stvs-internal"
_CLAIMS = ("svc", "m", "t", "exp", "iat")


class Identity(BaseModel):
    """Who is calling. ``unit_id`` for unit admins, ``volunteer_id`` for volunteers."""

    subject: str
    role: Role
    unit_id: str | None = None
    volunteer_id: str | None = None
    display_name: str | None = None

    @property
    def is_province(self) -> bool:
        return self.role == "province_admin"


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def sign_identity(
    identity: Identity,
    secret: str,
    *,
    service: str,
    method: str,
    target: str,
    body: bytes | None = None,
    ttl_s: int = IDENTITY_TTL_S,
) -> str:
    """The identity signed for one request: ``target`` is the path as sent (percent-encoded) with ``?query`` if
    any; ``body`` (when the sender holds it) binds the signature to exactly these bytes."""
    now = int(time.time())
    claims: dict[str, Any] = {
        **identity.model_dump(),
        "svc": service,
        "m": method.upper(),
        "t": target,
        "iat": now,
        "exp": now + ttl_s,
        "aud": _AUDIENCE,
    }
    if body is not None:
        claims["bd"] = body_digest(body)
    return jwt.encode(claims, secret, "HS256")


def _bad(detail: str = "身份凭证无效或已过期，请通过网关访问") -> Problem:
    return Problem(401, "bad_identity", detail)


def read_identity(
    token: str, secret: str, *, service: str, method: str, target: str, at: float | None = None
) -> tuple[Identity, str | None]:
    """Check a signed identity against the request it arrived with (at wall-clock time ``at``); returns it and
    the body digest the signer bound it to (None: not bound to a body)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=_AUDIENCE,
            options={"require": list(_CLAIMS), "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise _bad() from exc
    now = time.time() if at is None else at
    if not (claims["iat"] - IDENTITY_SKEW_S <= now <= claims["exp"] + IDENTITY_SKEW_S):
        raise _bad()
    if claims["exp"] - claims["iat"] > 60:
        raise _bad()  # only short-lived signatures are accepted, whoever signed them
    if claims["svc"] != service:
        raise _bad("身份凭证是为其他服务签发的，请通过网关访问")
    if claims["m"] != method.upper() or not hmac.compare_digest(str(claims["t"]), target):
        raise _bad("身份凭证是为其他请求签发的，请通过网关访问")
    digest = claims.get("bd")
    return Identity.model_validate(claims), digest if isinstance(digest, str) else None


def request_target(scope: Mapping[str, Any]) -> str:
    """The path (as sent, percent-encoded) and query of an ASGI request: what the signer signed."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope.get("path", ""))
    query = scope.get("query_string") or b""
    return f"{path}?{query.decode('latin-1')}" if query else path


async def _identity(request: Request) -> Identity:
    token = request.headers.get(HEADER)
    if not token:
        raise Problem(401, "no_identity", "缺少身份凭证，请通过网关访问")
    secret: str = request.app.state.internal_secret
    service: str = request.app.state.service_name
    identity, digest = read_identity(
        token,
        secret,
        service=service,
        method=request.method,
        target=request_target(request.scope),
        at=request.scope.get(ARRIVED),
    )
    if digest is not None and not hmac.compare_digest(digest, body_digest(await request.body())):
        raise _bad("身份凭证是为其他请求签发的，请通过网关访问")
    return identity


def require_roles(*roles: Role) -> Any:
    """Dependency: the caller must have one of ``roles``."""

    def check(identity: Annotated[Identity, Depends(_identity)]) -> Identity:
        if identity.role not in roles:
            raise Problem(403, "forbidden_role", "当前账号的角色无权执行此操作")
        return identity

    return Depends(check)


IdentityDep = Annotated[Identity, Depends(_identity)]


def acting_as(identity: Identity) -> dict[str, str]:
    """Headers saying who one request acts as, for a client whose ``auth`` is a :class:`SignedIdentity`."""
    return {ACTING_AS: json.dumps(identity.model_dump(exclude_none=True))}


class SignedIdentity(httpx.Auth):
    """``httpx`` auth that signs an identity for each request, bound to that request and its body: the client's
    ``identity`` by default, or the one a request names with :func:`acting_as` headers."""

    requires_request_body = True

    def __init__(self, secret: str, service: str, identity: Identity | None = None) -> None:
        self.secret = secret
        self.service = service
        self.identity = identity

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        named = request.headers.pop(ACTING_AS, None)
        identity = Identity.model_validate_json(named) if named else self.identity
        if identity is not None and HEADER not in request.headers:
            request.headers[HEADER] = sign_identity(
                identity,
                self.secret,
                service=self.service,
                method=request.method,
                target=request.url.raw_path.decode("latin-1"),
                body=request.content,
            )
        yield request
