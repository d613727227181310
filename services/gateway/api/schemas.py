"""Typed request and response bodies of the gateway's own API (the JSON answered before they were typed, unchanged)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.gateway.domain.accounts import Account, AccountPatch, NewAccount
from services.gateway.domain.audit import Kind

__all__ = ["Account", "AccountPatch", "NewAccount"]


class SignIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class Refresh(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class Tokens(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int = Field(description="Seconds the access token stays valid")
    refresh_token: str
    refresh_expires_in: int
    account: Account


class PasswordChange(BaseModel):
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class CreatedAccount(BaseModel):
    account: Account
    api_key: str | None = Field(None, description="Only for system accounts, shown this once")


class CertificateCheck(BaseModel):
    """What a third party needs to verify a service-record certificate, and nothing more."""

    valid: bool = Field(description="证明编号是否有效（由平台出具且未被篡改）")
    number: str = Field(description="证明编号")
    platform_number: str | None = Field(None, description="志愿者的平台注册编号")
    name_masked: str | None = Field(None, description="打码后的姓名，如 张*普")
    hours: float | None = Field(None, description="证明所载的志愿服务时长（小时）")
    issuing_unit_name: str | None = Field(None, description="出具单位")
    issued_at: datetime | None = Field(None, description="出具时间")


class AuditEntry(BaseModel):
    """One audited request. Ids only: never a name, an ID number, a body or a query value."""

    id: str
    at: datetime = Field(description="When the answer was given (UTC)")
    kind: Kind = Field(description="write：管理员或系统的写操作；personal_data：查看或导出个人信息")
    actor_id: str = Field(description="Account id")
    username: str
    role: str
    actor_unit_id: str | None = None
    method: str
    route: str = Field(description="Route template, e.g. /api/v1/volunteers/{volunteer_id}")
    resource: dict[str, str] = Field(default_factory=dict, description="The ids the path names")
    unit_ids: list[str] = Field(default_factory=list, description="Units concerned: named in the request, the actor's")
    query_keys: list[str] = Field(default_factory=list, description="Names of the query parameters (not values)")
    status: int = Field(description="The HTTP status of the answer")
    address: str = Field(description="Client address (X-Forwarded-For only from trusted proxies)")


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = Field(None, description="Pass as cursor for the next (older) page; null: no more")
