"""Scope enforcement before a request is forwarded: what the gateway can check from the path, the query and a small
body (the services check the rest too)."""

from __future__ import annotations

from services.gateway.domain.errors import DENIED, GatewayError, out_of_scope
from services.gateway.domain.routes import READS, UNIT_FIELDS, UNIT_QUERY, units_named, volunteer_may, volunteers_named
from services.gateway.domain.scope import check_body_volunteer, json_body
from shared.identity import Identity
from shared.scope import system_may_read

from .ports import UnitTree


class Access:
    def __init__(self, tree: UnitTree) -> None:
        self.tree = tree

    async def authorize(
        self, identity: Identity, method: str, segments: list[str], query: list[tuple[str, str]], dlq: bool
    ) -> None:
        """Scope rules the gateway can check from the path and query alone."""
        read = method in READS
        if identity.role == "province_admin":
            return
        if dlq:
            raise GatewayError(403, "forbidden_role", "仅省级管理员可管理死信", DENIED)
        if identity.role == "system":
            if not read or segments[0] == "certificates":  # issuing a certificate is a GET, but a write
                raise GatewayError(403, "read_only", "系统账号只能读取数据", DENIED)
            if not system_may_read(segments):
                raise GatewayError(403, "forbidden_role", "系统账号只能读取组织与统计数据，不能读取个人信息", DENIED)
            return
        if identity.role == "volunteer":
            await self._volunteer(identity, method, segments, query)
            return
        if identity.role != "unit_admin":
            raise out_of_scope(read)
        unit_ids = [v for k, v in query if k in UNIT_QUERY] + units_named(segments)
        if not await self.tree.all_in_scope(identity, unit_ids):
            raise out_of_scope(read)
        for volunteer_id in volunteers_named(segments):
            known = await self.tree.volunteer_units(volunteer_id)
            if known is not None and not await self.tree.volunteer_in_scope(identity, volunteer_id):
                raise out_of_scope(read)

    async def _volunteer(
        self, identity: Identity, method: str, segments: list[str], query: list[tuple[str, str]]
    ) -> None:
        if not volunteer_may(identity, method, segments, query):
            raise out_of_scope(method in READS)
        issuers = [v for k, v in query if k == "unit_id"]
        if issuers and segments[0] == "certificates":
            # a certificate names its issuing unit: only one the volunteer belongs to
            own = await self.tree.volunteer_units(identity.volunteer_id or "") or []
            if not set(issuers) <= set(own):
                raise out_of_scope(method in READS)

    async def check_body(self, identity: Identity, method: str, body: bytes) -> None:
        """A write's body: a unit admin's may name only units (and known volunteers) of its scope; a volunteer's only
        itself."""
        if identity.role == "volunteer":
            check_body_volunteer(identity, body)
        elif identity.role == "unit_admin":
            await self._unit_admin_body(identity, body)

    async def _unit_admin_body(self, identity: Identity, body: bytes) -> None:
        """A unit admin's write naming units (``unit_id``, ``parent_id``, ``unit_ids``) must stay inside its scope,
        and a volunteer it acts for (``volunteer_id``) must not be one the copy knows outside it. Any body that is not
        a file upload is looked at, whatever its media type says (``Application/JSON``, ``…+json``, none at all)."""
        doc = json_body(body)
        if doc is None:
            return
        named = [doc[f] for f in UNIT_FIELDS if isinstance(doc.get(f), str)]
        if isinstance(doc.get("unit_ids"), list):
            named += [u for u in doc["unit_ids"] if isinstance(u, str)]
        if not await self.tree.all_in_scope(identity, named):
            raise GatewayError(403, "out_of_scope", "超出本账号的管理范围，无权执行此操作", DENIED)
        volunteer_id = doc.get("volunteer_id")
        if isinstance(volunteer_id, str):
            known = await self.tree.volunteer_units(volunteer_id)
            if known is not None and not await self.tree.volunteer_in_scope(identity, volunteer_id):
                raise GatewayError(403, "out_of_scope", "超出本账号的管理范围，无权执行此操作", DENIED)
