"""The caller's identity as the gateway forwards it to internal services.

The gateway signs the identity (role, unit, volunteer) with the internal token; a service refuses a call that
does not carry a valid one, so internal APIs are useless to anyone who goes around the gateway.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request
from pydantic import BaseModel

from shared.problems import Problem

HEADER = "X-STVS-Identity"
Role = Literal["province_admin", "unit_admin", "volunteer", "system"]


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


def sign_identity(identity: Identity, secret: str, ttl_s: int = 60) -> str:
    now = int(time.time())
    return jwt.encode(
        {**identity.model_dump(), "iat": now, "exp": now + ttl_s, "aud": "stvs-internal"}, secret, "HS256"
    )


def read_identity(token: str, secret: str) -> Identity:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], audience="stvs-internal")
    except jwt.PyJWTError as exc:
        raise Problem(401, "bad_identity", "身份凭证无效或已过期，请通过网关访问") from exc
    return Identity.model_validate(claims)


def _identity(request: Request) -> Identity:
    token = request.headers.get(HEADER)
    if not token:
        raise Problem(401, "no_identity", "缺少身份凭证，请通过网关访问")
    secret: str = request.app.state.internal_secret
    return read_identity(token, secret)


def require_roles(*roles: Role) -> Any:
    """Dependency: the caller must have one of ``roles``."""

    def check(identity: Annotated[Identity, Depends(_identity)]) -> Identity:
        if identity.role not in roles:
            raise Problem(403, "forbidden_role", "当前账号的角色无权执行此操作")
        return identity

    return Depends(check)


IdentityDep = Annotated[Identity, Depends(_identity)]
