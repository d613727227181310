"""What the gateway's use cases need from the outside world, as protocols: its storage (accounts and sessions, the
unit-tree copy, rate limits, the audit log; on MongoDB in ``adapters/``) and password hashing."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from services.gateway.domain.accounts import Account, AccountPatch, NewAccount
from shared.identity import Identity

Doc = dict[str, Any]


class UnitTree(Protocol):
    """The copy of the unit tree and of volunteers' memberships (kept from the registry's events)."""

    async def in_scope(self, identity: Identity, unit_id: str) -> bool: ...

    async def all_in_scope(self, identity: Identity, unit_ids: Iterable[str]) -> bool: ...

    async def volunteer_in_scope(self, identity: Identity, volunteer_id: str) -> bool: ...

    async def volunteer_units(self, volunteer_id: str) -> list[str] | None:
        """The units of a volunteer the copy knows (None: not known)."""
        ...


class Accounts(Protocol):
    async def get(self, account_id: str) -> Doc | None: ...

    async def for_session(self, account_id: str, sid: str) -> Doc | None: ...

    async def by_username(self, username: str) -> Doc | None: ...

    async def by_api_key(self, key: str) -> Doc | None: ...

    async def create(self, new: NewAccount, *, created_by: str | None) -> tuple[Account, str | None]: ...

    async def all(self) -> list[Doc]: ...

    async def patch(self, account_id: str, patch: AccountPatch) -> Account: ...

    async def open_session(self, doc: Doc, ttl_s: int) -> tuple[str, str]: ...

    async def rotate_session(self, refresh_token: str, ttl_s: int) -> tuple[Doc, str, str]: ...

    async def close_session(self, account_id: str, sid: str) -> None: ...


class Limiter(Protocol):
    async def hit(self, key: str) -> float:
        """Count one attempt; 0 when allowed, else the seconds until the next one is."""
        ...


class Passwords(Protocol):
    async def verify(self, password_hash: str | None, password: str) -> bool: ...


class AuditStore(Protocol):
    async def page(
        self,
        actor: str | None,
        unit_id: str | None,
        since: datetime | None,
        until: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Doc]:
        """Records newest first (``after``: older than this (at, id)), at most ``limit``."""
        ...
