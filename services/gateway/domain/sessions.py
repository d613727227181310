"""Access tokens: short-lived HS256 JWTs carrying the account id, the account's token version and the session id
(every request reads the account, so a sign-out, a password change or a disabled account counts at once)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from services.gateway.settings import GatewaySettings

from .errors import unauthorized

Doc = dict[str, Any]

AUDIENCE = "stvs-api"
ISSUER = "stvs-gateway"


def issue_access_token(settings: GatewaySettings, doc: Doc, sid: str) -> str:
    now = int(time.time())
    claims = {
        "sub": doc["_id"],
        "ver": doc["token_version"],
        "sid": sid,
        "role": doc["role"],
        "iat": now,
        "exp": now + settings.access_ttl_s,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), "HS256")


def decode_access_token(settings: GatewaySettings, token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["sub", "ver", "sid", "exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise unauthorized("token_expired", "登录已过期，请刷新或重新登录") from exc
    except jwt.PyJWTError as exc:
        raise unauthorized("invalid_token", "访问令牌无效，请重新登录") from exc
    return claims
