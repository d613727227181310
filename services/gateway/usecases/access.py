"""Scope enforcement before a request is forwarded, the same for every operation: what its service declares beside
the route (:mod:`shared.access`, found by :class:`services.gateway.domain.routes.Table`) checked against the
caller, from the path, the query and a small body (the services check the rest too)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.gateway.domain.errors import DENIED, GatewayError, out_of_scope
from services.gateway.domain.routes import READS, Match
from services.gateway.domain.scope import check_body_volunteer, json_body
from shared.access import Position
from shared.identity import Identity

from .ports import UnitTree

Query = list[tuple[str, str]]


def _named(
    positions: Sequence[Position], match: Match, query: Query, body: dict[str, Any] | None, *, from_body: bool
) -> list[str]:
    """The ids named at ``positions``: those of the path and query, or (``from_body``) those of the body."""
    return [
        i
        for p in positions
        if (p.where == "body") == from_body
        for i in p.ids(match.params, query, body if from_body else None)
    ]


class Access:
    def __init__(self, tree: UnitTree) -> None:
        self.tree = tree

    async def authorize(self, identity: Identity, method: str, match: Match, query: Query) -> None:
        """The operation's declaration, checked from the path and the query."""
        decl = match.operation.access
        read = method in READS
        if identity.role == "province_admin":
            return
        if decl.province_only:
            raise GatewayError(403, "forbidden_role", "仅省级管理员可调用此接口", DENIED)
        if identity.role == "system":
            if not read:
                raise GatewayError(403, "read_only", "系统账号只能读取数据", DENIED)
            if not decl.allows("system"):
                raise GatewayError(403, "forbidden_role", "系统账号只能读取组织与统计数据，不能读取个人信息", DENIED)
            return
        if identity.role == "volunteer":
            await self._volunteer(identity, read, match, query)
            return
        if identity.role != "unit_admin":
            raise out_of_scope(read)
        if not decl.allows("unit_admin"):
            raise GatewayError(403, "forbidden_role", "本账号的角色无权调用此接口", DENIED)
        units = _named(decl.units, match, query, None, from_body=False)
        if not await self.tree.all_in_scope(identity, units):
            raise out_of_scope(read)
        for volunteer_id in _named(decl.volunteers, match, query, None, from_body=False):
            if not await self._reaches(identity, volunteer_id):
                raise out_of_scope(read)

    async def _volunteer(self, identity: Identity, read: bool, match: Match, query: Query) -> None:
        """A volunteer calls what its operation admits volunteers to, naming only itself where it must, and (a
        certificate's issuing unit) only units it belongs to."""
        decl = match.operation.access
        me = identity.volunteer_id
        if not me or not decl.allows("volunteer"):
            raise out_of_scope(read)
        if decl.volunteer_self:
            named = _named((*decl.volunteers, *decl.me), match, query, None, from_body=False)
            if any(v != me for v in named):
                raise out_of_scope(read)
        if decl.own_units:
            units = _named(decl.units, match, query, None, from_body=False)
            if units and not set(units) <= set(await self.tree.volunteer_units(me) or []):
                raise out_of_scope(read)

    async def _reaches(self, identity: Identity, volunteer_id: str) -> bool:
        """A unit admin reaches a volunteer the gateway's copy does not know (the service decides), or one of its
        scope."""
        known = await self.tree.volunteer_units(volunteer_id)
        return known is None or await self.tree.volunteer_in_scope(identity, volunteer_id)

    async def check_body(self, identity: Identity, match: Match, body: bytes) -> None:
        """A write's body: a unit admin's may name only units (and known volunteers) of its scope; a volunteer's only
        itself. Any body that is not a file upload is looked at, whatever its media type says."""
        if identity.role == "volunteer":
            check_body_volunteer(identity, body)
        elif identity.role != "unit_admin":
            return
        decl = match.operation.access
        doc = json_body(body)
        if doc is None:
            return
        if identity.role == "volunteer":
            if decl.volunteer_self:
                named = _named((*decl.volunteers, *decl.me), match, [], doc, from_body=True)
                if any(v != identity.volunteer_id for v in named):
                    raise GatewayError(403, "not_yourself", "志愿者只能为本人报名、取消报名或签到签退", DENIED)
            return
        denied = GatewayError(403, "out_of_scope", "超出本账号的管理范围，无权执行此操作", DENIED)
        if not await self.tree.all_in_scope(identity, _named(decl.units, match, [], doc, from_body=True)):
            raise denied
        for volunteer_id in _named(decl.volunteers, match, [], doc, from_body=True):
            if not await self._reaches(identity, volunteer_id):
                raise denied
