"""Reading the audit log (province admins only): newest first, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.gateway.domain.audit import aware, next_cursor, read_cursor
from services.gateway.domain.errors import GatewayError
from shared.identity import Identity

from .ports import AuditStore, Doc


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    unit_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: str | None = None


class Audit:
    def __init__(self, store: AuditStore) -> None:
        self.store = store

    async def page(self, identity: Identity, query: AuditQuery, limit: int) -> tuple[list[Doc], str | None]:
        """The records of one page and the cursor of the next (None: no more)."""
        if identity.role != "province_admin":
            raise GatewayError(403, "forbidden_role", "仅省级管理员可以查看审计日志")
        aware(query.since, "since")
        aware(query.until, "until")
        after = read_cursor(query.cursor) if query.cursor else None
        docs = await self.store.page(query.actor, query.unit_id, query.since, query.until, after, limit + 1)
        return docs[:limit], next_cursor(docs[limit - 1]) if len(docs) > limit else None
