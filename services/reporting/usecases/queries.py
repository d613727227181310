"""The reads: a subtree in the caller's scope, the compliance table, a unit's year, a month's report, a volunteer's
record, and the documents made of them (exports, charts). Each loads through the read-model port and assembles in
the domain."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.reporting.domain.errors import Invalid, NotFound
from services.reporting.domain.hierarchy import Tree, headcount, tree_of
from services.reporting.domain.periods import campaign_quarters, parse_month
from services.reporting.domain.projection import Record
from services.reporting.domain.rollup import compliance_table, monthly_rollup, unit_year, volunteer_record
from services.reporting.domain.vocabulary import FIRST_BATCH_MINIMUM, UnitKind
from shared.calendar import monthly_report_due
from shared.identity import Identity
from shared.scope import covers, unit_path

from .ports import Documents, ReadModels, SubmissionStore

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Campaign:
    """The campaign's calendar as configured (settings)."""

    year: int
    monthly_report_day: int
    start_month: int


def check_can_read(identity: Identity, unit: Mapping[str, Any]) -> None:
    """Province admins and the system read everything; a unit admin reads its own unit and what is below it (the
    shared rule, :mod:`shared.scope`). Out of scope is not found: nothing is revealed, not even that it exists."""
    if identity.role in ("province_admin", "system"):
        return
    if covers(identity, unit_path(unit)):
        return
    raise NotFound("unit_not_found", "未找到该队伍，或不在本账号的范围内")


def reaches_volunteer(identity: Identity, volunteer_id: str, units: Mapping[str, Record], unit_ids: Any) -> bool:
    """The shared rule (shared.scope): the province, the volunteer itself, an admin of one of its units or above."""
    if identity.role == "province_admin":
        return True
    if identity.role == "volunteer":
        return identity.volunteer_id == volunteer_id
    if identity.role != "unit_admin":
        return False  # a system key reads no person's record
    return any(u in units and covers(identity, unit_path(units[u])) for u in unit_ids)


class Queries:
    """Every read of the service, for one caller at a time."""

    def __init__(
        self,
        read: ReadModels,
        submissions: SubmissionStore,
        documents: Documents,
        campaign: Campaign,
        clock: Clock,
    ) -> None:
        self.read = read
        self.submissions = submissions
        self.documents = documents
        self.campaign = campaign
        self.clock = clock

    async def tree(self, identity: Identity, root_id: str | None) -> Tree:
        """The subtree of ``root_id`` (default: the caller's own unit, or the province corps)."""
        if root_id is None:
            root_id = identity.unit_id or await self.read.province_id()
            if root_id is None:
                raise NotFound("unit_not_found", "尚无总队数据，请指定队伍")
        units = await self.read.subtree_units(root_id)
        root = units.get(root_id)
        if root is None:
            raise NotFound("unit_not_found", f"未找到队伍 {root_id}（或其注册事件尚未到达）")
        check_can_read(identity, root)
        return tree_of(units, root_id)

    def as_of(self, at: datetime | None) -> datetime:
        if at is None:
            return self.clock()
        if at.tzinfo is None:
            raise Invalid("naive_datetime", "时间须带时区，例如 2026-05-01T00:00:00+08:00")
        return at

    async def year_figures(self, tree: Tree, year: int) -> dict[str, Record]:
        """unit id → its figures of the year, for every unit of the subtree that has some."""
        return tree.only_members(await self.read.year_figures(year, tree.member_ids()))

    async def compliance(
        self, identity: Identity, unit_id: str | None, year: int | None, quarter: int | None, at: datetime | None
    ) -> Record:
        """The compliance table of a subtree (JSON-ready: 1,500 units × 21 rules for a province)."""
        tree = await self.tree(identity, unit_id)
        now = self.as_of(at)
        year = year or self.campaign.year
        return compliance_table(
            tree,
            await self.year_figures(tree, year),
            year,
            now,
            quarter=quarter,
            monthly_report_day=self.campaign.monthly_report_day,
            campaign_start_month=self.campaign.start_month,
        )

    async def unit_stats(self, identity: Identity, unit_id: str, year: int | None) -> Record:
        tree = await self.tree(identity, unit_id)
        year = year or self.campaign.year
        return unit_year(tree, await self.year_figures(tree, year), year)

    async def monthly_report(self, identity: Identity, unit_id: str, month: str) -> Record:
        """The month's report of a unit, from the read models, with its subtree's roll-up."""
        year, mon = parse_month(month)
        tree = await self.tree(identity, unit_id)
        return await self.report_of(tree, month, monthly_report_due(year, mon, self.campaign.monthly_report_day))

    async def report_of(self, tree: Tree, month: str, due_at: datetime) -> Record:
        docs = tree.only_members(await self.read.month_figures(month, tree.member_ids()))
        submission = await self.submissions.get(f"monthly:{tree.root['_id']}:{month}")
        return monthly_rollup(tree, docs, month, due_at, submission)

    async def volunteer_record(self, identity: Identity, volunteer_id: str) -> Record:
        """A volunteer's hours, activities and stars, if the caller reaches the volunteer."""
        doc, served = await self.read.volunteer(volunteer_id)
        found = volunteer_record(volunteer_id, doc, served)
        if found is None or not await self._reaches(identity, volunteer_id, found):
            raise NotFound("volunteer_not_found", f"未找到志愿者 {volunteer_id} 的服务记录")
        return found

    async def _reaches(self, identity: Identity, volunteer_id: str, record: Record) -> bool:
        if identity.role != "unit_admin":
            return reaches_volunteer(identity, volunteer_id, {}, [])
        return reaches_volunteer(identity, volunteer_id, await self.read.all_units(), record.get("unit_ids") or [])

    # ---- documents

    async def compliance_xlsx(
        self, identity: Identity, unit_id: str | None, year: int | None, quarter: int | None, at: datetime | None
    ) -> tuple[bytes, str]:
        """The compliance table as a workbook (one sheet per level) and its file name."""
        table = await self.compliance(identity, unit_id, year, quarter, at)
        name = f"compliance-{table['unit_id']}-{year or self.campaign.year}.xlsx"
        return self.documents.compliance_xlsx(table), name

    async def monthly_xlsx(self, identity: Identity, unit_id: str, month: str) -> bytes:
        return self.documents.monthly_xlsx(await self.monthly_report(identity, unit_id, month))

    async def headcount_chart(self, identity: Identity, unit_id: str | None) -> str:
        """The city detachments' headcounts against their first-batch minimum."""
        tree = await self.tree(identity, unit_id)
        minimum = FIRST_BATCH_MINIMUM[UnitKind.CITY_DETACHMENT]
        rows = [
            {"name": u.get("name"), "volunteers": headcount(u), "minimum": minimum}
            for u in tree.members
            if u["kind"] == UnitKind.CITY_DETACHMENT
        ]
        return self.documents.headcount_svg(sorted(rows, key=lambda r: str(r["name"])))

    async def quota_heatmap(self, identity: Identity, unit_id: str | None, year: int | None, limit: int) -> str:
        """Units × quarters: the activities each carried out (the first ``limit`` units of the subtree)."""
        year = year or self.campaign.year
        tree = await self.tree(identity, unit_id)
        members = tree.members[:limit]
        stats = await self.year_figures(Tree(tree.units, tree.root, members, tree.below), year)
        rows = [
            {"name": u.get("name"), "quarters": (stats.get(str(u["_id"])) or {}).get("quarters") or {}} for u in members
        ]
        quarters = list(campaign_quarters(self.campaign.start_month))
        return self.documents.quota_heatmap_svg(rows, quarters, year)
