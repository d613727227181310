"""Accounts of people and systems that use the platform: what one is, what it shows, how it must be bound (a unit
admin to its unit, a volunteer to its volunteer record; a system account has an API key, not a password)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.identity import Identity, Role

from .errors import GatewayError

Doc = dict[str, Any]


class Account(BaseModel):
    """An account as the API shows it (never the password hash or sessions)."""

    id: str
    username: str
    role: Role
    unit_id: str | None = None
    volunteer_id: str | None = None
    display_name: str | None = None
    disabled: bool = False
    created_at: datetime
    created_by: str | None = None

    @classmethod
    def of(cls, doc: Doc) -> Account:
        return cls(id=doc["_id"], **{k: doc.get(k) for k in cls.model_fields if k != "id"})

    def identity(self) -> Identity:
        return Identity(
            subject=self.id,
            role=self.role,
            unit_id=self.unit_id,
            volunteer_id=self.volunteer_id,
            display_name=self.display_name or self.username,
        )


class NewAccount(BaseModel):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@\-]+$")
    password: str | None = Field(None, min_length=8, max_length=256, description="Not for system accounts")
    role: Role
    unit_id: str | None = Field(None, description="Required for unit_admin")
    volunteer_id: str | None = Field(None, description="Required for volunteer")
    display_name: str | None = Field(None, max_length=64)


class AccountPatch(BaseModel):
    disabled: bool | None = None
    password: str | None = Field(None, min_length=8, max_length=256)
    display_name: str | None = Field(None, max_length=64)


class Session(BaseModel):
    secret_hash: str
    expires_at: datetime
    token_version: int


def check_binding(new: NewAccount) -> None:
    need: dict[str, Literal["unit_id", "volunteer_id"]] = {"unit_admin": "unit_id", "volunteer": "volunteer_id"}
    field = need.get(new.role)
    if field and not getattr(new, field):
        raise GatewayError(422, "binding_missing", "单位管理员须绑定队伍，志愿者账号须绑定志愿者")
    if new.role != "system" and not new.password:
        raise GatewayError(422, "password_missing", "请设置密码（至少 8 位）")
    if new.role == "system" and new.password:
        raise GatewayError(422, "password_not_allowed", "系统账号使用 API 密钥，不设密码")


def managed_by(identity: Identity, account: Doc) -> Literal["all", "unit", "volunteer", "none"]:
    """How an admin's scope decides whether it manages ``account``: a province admin every account; a unit admin
    the unit admins of a unit ("unit") and the volunteers ("volunteer") of its subtree; nobody else any."""
    if identity.role == "province_admin":
        return "all"
    if identity.role != "unit_admin":
        return "none"
    if account.get("role") == "unit_admin" and account.get("unit_id"):
        return "unit"
    if account.get("role") == "volunteer" and account.get("volunteer_id"):
        return "volunteer"
    return "none"
