"""In-memory implementations of the gateway's ports (``services.gateway.usecases.ports``): the use cases run on them
without a database. Test doubles of the PORTS, not of MongoDB."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from services.gateway.domain.accounts import Account, AccountPatch, NewAccount, check_binding
from services.gateway.domain.errors import GatewayError
from services.gateway.domain.scope import covers
from shared.identity import Identity

Doc = dict[str, Any]
PASSWORD = "password-1"


class MemoryTree:
    """Units by id with their ancestors; volunteers with their units."""

    def __init__(self, units: dict[str, list[str]], volunteers: dict[str, list[str]] | None = None) -> None:
        self.units = units  # unit id -> ancestors, top down
        self.volunteers = volunteers or {}

    async def in_scope(self, identity: Identity, unit_id: str) -> bool:
        if identity.role == "province_admin":
            return True
        if identity.role != "unit_admin" or not identity.unit_id:
            return False
        known = {"ancestors": self.units[unit_id]} if unit_id in self.units else None
        return unit_id == identity.unit_id or covers(identity, unit_id, known)

    async def all_in_scope(self, identity: Identity, unit_ids: Iterable[str]) -> bool:
        return all([await self.in_scope(identity, u) for u in unit_ids])

    async def volunteer_in_scope(self, identity: Identity, volunteer_id: str) -> bool:
        if identity.role == "volunteer":
            return identity.volunteer_id == volunteer_id
        return any([await self.in_scope(identity, u) for u in self.volunteers.get(volunteer_id, [])])

    async def volunteer_units(self, volunteer_id: str) -> list[str] | None:
        return self.volunteers.get(volunteer_id)


class MemoryAccounts:
    def __init__(self) -> None:
        self.docs: dict[str, Doc] = {}
        self.keys: dict[str, str] = {}

    def add(self, username: str, role: str, *, password: str | None = PASSWORD, **fields: Any) -> Doc:
        doc: Doc = {
            "_id": f"acc-{username}",
            "username": username,
            "role": role,
            "password_hash": f"hash:{password}" if password else None,
            "disabled": False,
            "token_version": 1,
            "sessions": {},
            "created_at": datetime(2026, 4, 1, tzinfo=UTC),
            **fields,
        }
        self.docs[doc["_id"]] = doc
        return doc

    async def get(self, account_id: str) -> Doc | None:
        return self.docs.get(account_id)

    async def for_session(self, account_id: str, sid: str) -> Doc | None:
        return self.docs.get(account_id)

    async def by_username(self, username: str) -> Doc | None:
        return next((d for d in self.docs.values() if d["username"].lower() == username.lower()), None)

    async def by_api_key(self, key: str) -> Doc | None:
        return self.docs.get(self.keys.get(key, ""))

    async def create(self, new: NewAccount, *, created_by: str | None) -> tuple[Account, str | None]:
        check_binding(new)
        if await self.by_username(new.username) is not None:
            raise GatewayError(409, "username_taken", f"用户名 {new.username} 已被使用")
        doc = self.add(
            new.username, new.role, password=new.password, unit_id=new.unit_id, volunteer_id=new.volunteer_id
        )
        return Account.of(doc), None

    async def all(self) -> list[Doc]:
        return list(self.docs.values())

    async def patch(self, account_id: str, patch: AccountPatch) -> Account:
        doc = self.docs[account_id]
        if patch.disabled is not None:
            doc["disabled"] = patch.disabled
        if patch.password is not None:
            doc.update(password_hash=f"hash:{patch.password}", sessions={})
            doc["token_version"] += 1
        return Account.of(doc)

    async def open_session(self, doc: Doc, ttl_s: int) -> tuple[str, str]:
        sid = secrets.token_hex(8)
        doc["sessions"][sid] = {"token_version": doc["token_version"]}
        return sid, f"{doc['_id']}.{sid}.secret"

    async def rotate_session(self, refresh_token: str, ttl_s: int) -> tuple[Doc, str, str]:
        account_id, sid, _ = refresh_token.split(".")
        return self.docs[account_id], sid, f"{account_id}.{sid}.next"

    async def close_session(self, account_id: str, sid: str) -> None:
        self.docs[account_id]["sessions"].pop(sid, None)


class MemoryLimiter:
    """Lets ``allowed`` attempts per key through, then asks to wait."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.hits: dict[str, int] = {}

    async def hit(self, key: str) -> float:
        self.hits[key] = self.hits.get(key, 0) + 1
        return 0.0 if self.hits[key] <= self.allowed else 12.5


class CountingPasswords:
    """``hash:<password>`` hashes; counts every check (each costs real CPU in production)."""

    def __init__(self) -> None:
        self.checked = 0

    async def verify(self, password_hash: str | None, password: str) -> bool:
        self.checked += 1
        return password_hash == f"hash:{password}"
