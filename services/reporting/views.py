"""Read side: compliance, unit statistics and monthly reports assembled from the projections.

Roll-up through the hierarchy happens here, at read time: the unit snapshots give the tree (each names its
ancestors; a subtree is one indexed query), and a subtree's numbers are the sum of its units' own documents of the
year or month, fetched by one indexed query. A unit that moves in the tree therefore takes its numbers with it as
soon as its new snapshot arrives.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.calendar import monthly_report_due
from shared.identity import Identity
from shared.problems import Problem
from shared.programme import city_name
from shared.scope import covers, unit_path
from shared.storage import Doc

from .domain import (
    FIRST_BATCH_MINIMUM,
    UNIT_KIND_ZH,
    RuleResult,
    RuleStatus,
    UnitFacts,
    UnitKind,
    evaluate_unit,
    first_batch_units,
    hours_to_next_star,
    star_level,
)
from .projections import hours_bucket, hours_field
from .store import (
    MONTH_STATS,
    SUBMISSIONS,
    UNIT_STATS,
    UNITS,
    VOLUNTEER_HOURS,
    VOLUNTEER_STATS,
    add_into,
    descendants_index,
    figures_of,
    hours,
    subtree,
    subtree_units,
)

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
STAT_FIELDS = (
    "activities",
    "quarters",
    "lines",
    "themes",
    "hours_c",
    "quarter_hours_c",
    "people_served",
    "participations",
)
MONTH_FIELDS = ("activities", "hours_c", "people_served", "new_volunteers", "lines")

# Sheets / levels of the province's roll-up, in the order the office reads them.
LEVEL_ZH: Mapping[str, str] = {
    UnitKind.PROVINCE_CORPS: "总队",
    UnitKind.CITY_DETACHMENT: "市级",
    UnitKind.SOCIETY_DETACHMENT: "学会",
    UnitKind.UNIVERSITY_DETACHMENT: "高校",
    UnitKind.ENTERPRISE_DETACHMENT: "企业",
    UnitKind.COUNTY_TEAM: "县级",
    UnitKind.SUB_TEAM: "分队",
}
STATUS_ZH: Mapping[str, str] = {RuleStatus.MET: "已达标", RuleStatus.NOT_YET: "未完成", RuleStatus.MISSED: "已逾期"}


def parse_month(month: str) -> tuple[int, int]:
    found = MONTH.match(month)
    if not found:
        raise Problem(422, "bad_month", f"月份格式应为 YYYY-MM，收到 {month!r}")
    return int(found.group(1)), int(found.group(2))


@dataclass
class Tree:
    """The unit snapshots and the subtree of one root."""

    units: dict[str, Doc]  # the subtree's units by id
    root: Doc
    members: list[Doc]  # root first
    below: dict[str, list[str]]  # unit id -> ids of itself and its descendants

    def member_ids(self) -> list[str] | None:
        """The subtree's unit ids; None for the top of the hierarchy (every unit: no list to send)."""
        if not self.root.get("ancestors") and self.root.get("kind") == UnitKind.PROVINCE_CORPS:
            return None
        return [str(u["_id"]) for u in self.members]

    def only_members(self, docs: Mapping[str, Doc]) -> dict[str, Doc]:
        members = {str(u["_id"]) for u in self.members}
        return {uid: doc for uid, doc in docs.items() if uid in members}


async def load_tree(db: AsyncDatabase[Doc], root_id: str | None, identity: Identity) -> Tree:
    """The subtree of ``root_id`` (default: the caller's own unit, or the province corps)."""
    if root_id is None:
        root_id = identity.unit_id
        if root_id is None:
            province = await db[UNITS].find_one({"kind": UnitKind.PROVINCE_CORPS.value}, {"_id": 1})
            if province is None:
                raise Problem(404, "unit_not_found", "尚无总队数据，请指定队伍")
            root_id = str(province["_id"])
    units = await subtree_units(db, root_id)
    root = units.get(root_id)
    if root is None:
        raise Problem(404, "unit_not_found", f"未找到队伍 {root_id}（或其注册事件尚未到达）")
    check_can_read(identity, root)
    # A rejected application is no unit of the hierarchy (unless asked for by name).
    members = [u for u in subtree(units, root_id) if u.get("status") != "rejected" or u["_id"] == root_id]
    return Tree(units, root, members, descendants_index(members))


def check_can_read(identity: Identity, unit: Mapping[str, Any]) -> None:
    """Province admins and the system read everything; a unit admin reads its own unit and what is below it (the
    shared rule, :mod:`shared.scope`). Out of scope is 404: nothing is revealed, not even that the unit exists."""
    if identity.role in ("province_admin", "system"):
        return
    if covers(identity, unit_path(unit)):
        return
    raise Problem(404, "unit_not_found", "未找到该队伍，或不在本账号的范围内")


def covers_volunteer_units(identity: Identity, units: Mapping[str, Doc], unit_ids: Iterable[str]) -> bool:
    """A unit admin reaches a volunteer when one of the volunteer's units (known to ``units``) is in its scope."""
    return any(u in units and covers(identity, unit_path(units[u])) for u in unit_ids)


def unit_facts(
    unit: Mapping[str, Any], stats: Mapping[str, Any] | None, first_batch_volunteers: int | None = None
) -> UnitFacts:
    stats = stats or {}
    return UnitFacts(
        kind=UnitKind(unit["kind"]),
        registered_at=unit.get("registered_at"),
        volunteers=max(0, int(unit.get("volunteers") or 0)),
        first_batch_volunteers=first_batch_volunteers,
        leaders=dict(unit.get("leader_counts") or {}),
        activities_per_quarter={int(q): int(n) for q, n in (stats.get("quarters") or {}).items()},
        theme_counts=dict(stats.get("themes") or {}),
        contact_person_given_at=unit.get("contact_given_at"),
        action_plan_submitted_at=stats.get("action_plan_submitted_at"),
        monthly_reports=dict(stats.get("monthly_reports") or {}),
    )


def rule_json(result: RuleResult) -> Doc:
    return {
        "rule": result.rule,
        "status": result.status.value,
        "status_zh": STATUS_ZH[result.status],
        "gap": result.gap,
        "label_zh": result.label_zh,
        "detail_zh": result.detail_zh,
        "due_at": result.due_at,
    }


def _in_quarter(rule: str, quarter: int) -> bool:
    if rule.startswith("activity-Q"):
        return rule == f"activity-Q{quarter}"
    if rule.startswith("monthly-"):
        return (int(rule[-2:]) - 1) // 3 + 1 == quarter
    return True


def unit_json(unit: Mapping[str, Any]) -> Doc:
    return {
        "unit_id": unit["_id"],
        "name": unit.get("name"),
        "kind": unit.get("kind"),
        "kind_zh": UNIT_KIND_ZH[UnitKind(unit["kind"])],
        "level_zh": LEVEL_ZH[unit["kind"]],
        "city": unit.get("city"),
        "city_zh": city_name(unit.get("city")),
        "parent_id": unit.get("parent_id"),
        "status": unit.get("status"),
    }


DICT_FIELDS = ("quarters", "lines", "themes")
HOUR_FIELDS = ("hours_c", "quarter_hours_c")


def stats_json(total: Mapping[str, Any], fields: Sequence[str] = STAT_FIELDS) -> Doc:
    """Summed numbers with every field present (zero when nothing happened) and hours in hours."""
    out: Doc = {k: ({} if k in DICT_FIELDS else 0) for k in fields if k not in HOUR_FIELDS}
    out.update((k, v) for k, v in total.items() if k not in HOUR_FIELDS)
    out["hours"] = hours(total.get("hours_c"))
    if "quarter_hours_c" in fields:
        out["quarter_hours"] = {q: hours(v) for q, v in sorted((total.get("quarter_hours_c") or {}).items())}
    return out


async def year_figures(db: AsyncDatabase[Doc], tree: Tree, year: int) -> dict[str, Doc]:
    """unit id → its ``unit_stats`` of the year, for every unit of the subtree that has some."""
    return tree.only_members(await figures_of(db[UNIT_STATS], "year", year, tree.member_ids()))


async def compliance(
    db: AsyncDatabase[Doc],
    tree: Tree,
    year: int,
    now: datetime,
    *,
    quarter: int | None = None,
    monthly_report_day: int,
    campaign_start_month: int,
) -> Doc:
    stats = await year_figures(db, tree, year)
    kinds = {str(u["_id"]): UnitKind(u["kind"]) for u in tree.members}
    children: dict[str, list[str]] = {}
    for unit in tree.members:
        children.setdefault(str(unit.get("parent_id")), []).append(str(unit["_id"]))
    rows = []
    for unit in tree.members:
        uid = str(unit["_id"])
        first_batch = sum(
            max(0, int(tree.units[i].get("volunteers") or 0)) for i in first_batch_units(uid, kinds, children)
        )
        results = evaluate_unit(
            unit_facts(unit, stats.get(uid), first_batch),
            year,
            now,
            monthly_report_day=monthly_report_day,
            campaign_start_month=campaign_start_month,
        )
        if quarter is not None:
            results = [r for r in results if _in_quarter(r.rule, quarter)]
        subtree_volunteers = sum(max(0, int(tree.units[i].get("volunteers") or 0)) for i in tree.below[uid])
        rows.append(
            {
                **unit_json(unit),
                "volunteers": max(0, int(unit.get("volunteers") or 0)),
                "subtree_volunteers": subtree_volunteers,
                "first_batch_volunteers": first_batch,
                "minimum": FIRST_BATCH_MINIMUM.get(UnitKind(unit["kind"])),
                "rules": [rule_json(r) for r in results],
                "summary": {s.value: sum(1 for r in results if r.status is s) for s in RuleStatus},
            }
        )
    return {"unit_id": tree.root["_id"], "year": year, "quarter": quarter, "as_of": now, "units": rows}


async def unit_stats(db: AsyncDatabase[Doc], tree: Tree, year: int) -> Doc:
    stats = await year_figures(db, tree, year)
    own: dict[str, Any] = {}
    add_into(own, stats.get(str(tree.root["_id"])) or {}, STAT_FIELDS)
    rollup: dict[str, Any] = {}
    for doc in stats.values():
        add_into(rollup, doc, STAT_FIELDS)
    volunteers = sum(max(0, int(u.get("volunteers") or 0)) for u in tree.members)
    by_kind: dict[str, int] = {}
    for unit in tree.members:
        by_kind[unit["kind"]] = by_kind.get(unit["kind"], 0) + 1
    root = tree.root
    return {
        **unit_json(root),
        "year": year,
        "leader_counts": root.get("leader_counts") or {},
        "own": {**stats_json(own), "volunteers": max(0, int(root.get("volunteers") or 0))},
        "rollup": {
            **stats_json(rollup),
            "volunteers": volunteers,
            "units": len(tree.members),
            "units_by_kind": by_kind,
        },
    }


async def monthly_report(db: AsyncDatabase[Doc], tree: Tree, month: str, monthly_report_day: int) -> Doc:
    year, mon = parse_month(month)
    docs = tree.only_members(await figures_of(db[MONTH_STATS], "month", month, tree.member_ids()))
    rows = []
    rollup: dict[str, Any] = {}
    owns: dict[str, dict[str, Any]] = {}
    for unit in tree.members:
        uid = str(unit["_id"])
        own = owns[uid] = _own_month(unit, docs.get(uid), month)
        add_into(rollup, own, MONTH_FIELDS)
        rows.append(
            {
                **unit_json(unit),
                "volunteers": max(0, int(unit.get("volunteers") or 0)),
                "minimum": FIRST_BATCH_MINIMUM.get(UnitKind(unit["kind"])),
                **stats_json(own, MONTH_FIELDS),
            }
        )
    names = {str(u["_id"]): u.get("name") for u in tree.members}
    done = [
        {
            **{k: v for k, v in activity.items() if k != "hours_c"},
            "hours": hours(activity.get("hours_c")),
            "unit_id": doc["unit_id"],
            "unit_name": names.get(str(doc["unit_id"])),
        }
        for doc in docs.values()
        for activity in (doc.get("done") or {}).values()
        if activity.get("activity_id")  # a correction may arrive before its activity's completion
    ]
    done.sort(key=lambda a: (a["starts_at"], a["activity_id"]))
    root_id = str(tree.root["_id"])
    submission = await db[SUBMISSIONS].find_one({"_id": f"monthly:{root_id}:{month}"}, {"_outbox": 0})
    return {
        **unit_json(tree.root),
        "month": month,
        "due_at": monthly_report_due(year, mon, monthly_report_day),
        "team_building": {
            "units": len(tree.members),
            "units_active": sum(1 for u in tree.members if u.get("status") == "active"),
            "volunteers": max(0, int(tree.root.get("volunteers") or 0)),
            "subtree_volunteers": sum(r["volunteers"] for r in rows),
            "new_volunteers": int(rows[0].get("new_volunteers") or 0),
            "subtree_new_volunteers": int(rollup.get("new_volunteers") or 0),
        },
        "own": stats_json(owns[root_id], MONTH_FIELDS),
        "rollup": stats_json(rollup, MONTH_FIELDS),
        "units": rows,
        "activities_carried_out": done,
        "submission": _submission_json(submission),
    }


def _own_month(unit: Mapping[str, Any], doc: Mapping[str, Any] | None, month: str) -> dict[str, Any]:
    """A unit's own figures of a month: activities and hours from ``month_stats``, volunteers who joined it from
    the unit's document (counted there by the same write as its headcount)."""
    own: dict[str, Any] = {}
    add_into(own, doc or {}, MONTH_FIELDS)
    joined = int((unit.get("new_volunteers") or {}).get(month) or 0)
    if joined:
        own["new_volunteers"] = joined
    return own


def _submission_json(doc: Mapping[str, Any] | None) -> Doc | None:
    if doc is None:
        return None
    return {k: doc[k] for k in ("kind", "unit_id", "period", "submitted_at", "submitted_by", "late") if k in doc}


async def volunteer_stats(db: AsyncDatabase[Doc], volunteer_id: str) -> Doc | None:
    """Membership from the volunteer's document, hours from its bucket (either may be missing, not both)."""
    path = hours_field(volunteer_id)
    doc, bucket = await asyncio.gather(
        db[VOLUNTEER_STATS].find_one({"_id": volunteer_id}),
        db[VOLUNTEER_HOURS].find_one({"_id": hours_bucket(volunteer_id)}, {path: 1}),
    )
    served: Mapping[str, Any] = ((bucket or {}).get("v") or {}).get(path[2:]) or {}
    if doc is None and not served:
        return None
    doc = doc or {}
    total = hours(served.get("h"))
    return {
        "volunteer_id": volunteer_id,
        "display_name": doc.get("display_name") or served.get("n"),
        "platform_number": doc.get("platform_number"),
        "status": doc.get("status"),
        "unit_ids": doc.get("unit_ids") or [],
        "hours": total,
        "activities": int(served.get("a") or 0),
        "star_level": star_level(total),
        "hours_to_next_star": hours_to_next_star(total),
    }


def by_level(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows grouped into the roll-up's levels (one export sheet each), in the hierarchy's order."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for kind, level in LEVEL_ZH.items():
        chosen = [r for r in rows if r["kind"] == kind]
        if chosen:
            out[level] = chosen
    return out
