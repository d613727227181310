"""The read models' figures summed through the hierarchy: the compliance table, a unit's year, a month's report and a
volunteer's record, assembled from the records (pure; the use cases load them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.programme import city_name

from .compliance import STATUS_ZH, RuleResult, RuleStatus, UnitFacts, evaluate_unit, first_batch_units, in_quarter
from .hierarchy import LEVEL_ZH, Tree, headcount
from .projection import Record
from .reports import status_of, version_of
from .stars import hours, hours_to_next_star, star_level
from .vocabulary import FIRST_BATCH_MINIMUM, UNIT_KIND_ZH, UnitKind

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
DICT_FIELDS = ("quarters", "lines", "themes")
HOUR_FIELDS = ("hours_c", "quarter_hours_c")


def add_into(total: dict[str, Any], doc: Mapping[str, Any], fields: Iterable[str]) -> None:
    """Sum numeric fields (and dicts of numbers, e.g. per quarter) of ``doc`` into ``total``."""
    for name in fields:
        value = doc.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            total[name] = total.get(name, 0) + value
        elif isinstance(value, Mapping):
            bucket = total.setdefault(name, {})
            for key, number in value.items():
                if isinstance(number, int | float) and not isinstance(number, bool):
                    bucket[key] = bucket.get(key, 0) + number


def stats_json(total: Mapping[str, Any], fields: Sequence[str] = STAT_FIELDS) -> Record:
    """Summed numbers with every field present (zero when nothing happened) and hours in hours."""
    out: Record = {k: ({} if k in DICT_FIELDS else 0) for k in fields if k not in HOUR_FIELDS}
    out.update((k, v) for k, v in total.items() if k not in HOUR_FIELDS)
    out["hours"] = hours(total.get("hours_c"))
    if "quarter_hours_c" in fields:
        out["quarter_hours"] = {q: hours(v) for q, v in sorted((total.get("quarter_hours_c") or {}).items())}
    return out


def unit_json(unit: Mapping[str, Any]) -> Record:
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


def rule_json(result: RuleResult) -> Record:
    return {
        "rule": result.rule,
        "status": result.status.value,
        "status_zh": STATUS_ZH[result.status],
        "gap": result.gap,
        "label_zh": result.label_zh,
        "detail_zh": result.detail_zh,
        "due_at": result.due_at,
    }


def unit_facts(
    unit: Mapping[str, Any], stats: Mapping[str, Any] | None, first_batch_volunteers: int | None = None
) -> UnitFacts:
    stats = stats or {}
    return UnitFacts(
        kind=UnitKind(unit["kind"]),
        registered_at=unit.get("registered_at"),
        volunteers=headcount(unit),
        first_batch_volunteers=first_batch_volunteers,
        leaders=dict(unit.get("leader_counts") or {}),
        activities_per_quarter={int(q): int(n) for q, n in (stats.get("quarters") or {}).items()},
        theme_counts=dict(stats.get("themes") or {}),
        contact_person_given_at=unit.get("contact_given_at"),
        action_plan_submitted_at=stats.get("action_plan_submitted_at"),
        monthly_reports=dict(stats.get("monthly_reports") or {}),
        returned=returned_reports(stats),
    )


def returned_reports(stats: Mapping[str, Any]) -> frozenset[str]:
    """The reports of the year the province office returned and the unit has not submitted again."""
    found = {month for month, state in (stats.get("monthly_review") or {}).items() if state == "returned"}
    if stats.get("action_plan_review") == "returned":
        found.add("action_plan")
    return frozenset(found)


def compliance_table(
    tree: Tree,
    stats: Mapping[str, Record],
    year: int,
    now: datetime,
    *,
    quarter: int | None = None,
    monthly_report_day: int,
    campaign_start_month: int,
) -> Record:
    """Every unit of the subtree against every rule (of one quarter, if given), with its gaps."""
    kinds = {str(u["_id"]): UnitKind(u["kind"]) for u in tree.members}
    children: dict[str, list[str]] = {}
    for unit in tree.members:
        children.setdefault(str(unit.get("parent_id")), []).append(str(unit["_id"]))
    rows = []
    for unit in tree.members:
        uid = str(unit["_id"])
        first_batch = sum(headcount(tree.units[i]) for i in first_batch_units(uid, kinds, children))
        results = evaluate_unit(
            unit_facts(unit, stats.get(uid), first_batch),
            year,
            now,
            monthly_report_day=monthly_report_day,
            campaign_start_month=campaign_start_month,
        )
        if quarter is not None:
            results = [r for r in results if in_quarter(r.rule, quarter)]
        rows.append(
            {
                **unit_json(unit),
                "volunteers": headcount(unit),
                "subtree_volunteers": sum(headcount(tree.units[i]) for i in tree.below[uid]),
                "first_batch_volunteers": first_batch,
                "minimum": FIRST_BATCH_MINIMUM.get(UnitKind(unit["kind"])),
                "rules": [rule_json(r) for r in results],
                "summary": {s.value: sum(1 for r in results if r.status is s) for s in RuleStatus},
            }
        )
    return {"unit_id": tree.root["_id"], "year": year, "quarter": quarter, "as_of": now, "units": rows}


def unit_year(tree: Tree, stats: Mapping[str, Record], year: int) -> Record:
    """The root's own figures of the year and the subtree's roll-up."""
    own: dict[str, Any] = {}
    add_into(own, stats.get(str(tree.root["_id"])) or {}, STAT_FIELDS)
    rollup: dict[str, Any] = {}
    for doc in stats.values():
        add_into(rollup, doc, STAT_FIELDS)
    by_kind: dict[str, int] = {}
    for unit in tree.members:
        by_kind[unit["kind"]] = by_kind.get(unit["kind"], 0) + 1
    root = tree.root
    return {
        **unit_json(root),
        "year": year,
        "leader_counts": root.get("leader_counts") or {},
        "own": {**stats_json(own), "volunteers": headcount(root)},
        "rollup": {
            **stats_json(rollup),
            "volunteers": sum(headcount(u) for u in tree.members),
            "units": len(tree.members),
            "units_by_kind": by_kind,
        },
    }


def monthly_rollup(
    tree: Tree, docs: Mapping[str, Record], month: str, due_at: datetime, submission: Mapping[str, Any] | None
) -> Record:
    """A month's report of the root: team building, its own and the subtree's figures, every unit's row, the
    activities carried out, and its submission (if any)."""
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
                "volunteers": headcount(unit),
                "minimum": FIRST_BATCH_MINIMUM.get(UnitKind(unit["kind"])),
                **stats_json(own, MONTH_FIELDS),
            }
        )
    return {
        **unit_json(tree.root),
        "month": month,
        "due_at": due_at,
        "team_building": {
            "units": len(tree.members),
            "units_active": sum(1 for u in tree.members if u.get("status") == "active"),
            "volunteers": headcount(tree.root),
            "subtree_volunteers": sum(r["volunteers"] for r in rows),
            "new_volunteers": int(rows[0].get("new_volunteers") or 0),
            "subtree_new_volunteers": int(rollup.get("new_volunteers") or 0),
        },
        "own": stats_json(owns[str(tree.root["_id"])], MONTH_FIELDS),
        "rollup": stats_json(rollup, MONTH_FIELDS),
        "units": rows,
        "activities_carried_out": _carried_out(tree, docs),
        "submission": _submission_json(submission),
    }


def _carried_out(tree: Tree, docs: Mapping[str, Record]) -> list[Record]:
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
    return done


def _own_month(unit: Mapping[str, Any], doc: Mapping[str, Any] | None, month: str) -> dict[str, Any]:
    """A unit's own figures of a month: activities and hours from its month record, volunteers who joined it from
    the unit's record (counted there by the same write as its headcount)."""
    own: dict[str, Any] = {}
    add_into(own, doc or {}, MONTH_FIELDS)
    joined = int((unit.get("new_volunteers") or {}).get(month) or 0)
    if joined:
        own["new_volunteers"] = joined
    return own


def _submission_json(doc: Mapping[str, Any] | None) -> Record | None:
    if doc is None:
        return None
    found = {k: doc[k] for k in ("kind", "unit_id", "period", "submitted_at", "submitted_by", "late") if k in doc}
    return {**found, "status": status_of(doc), "version": version_of(doc)}


def volunteer_record(volunteer_id: str, doc: Mapping[str, Any] | None, served: Mapping[str, Any]) -> Record | None:
    """Membership from the volunteer's record, hours from its hours record (either may be missing, not both)."""
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
