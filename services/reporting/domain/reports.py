"""A submitted report (the action plan of a year, the monthly report of a month) through its review: versions,
the province office's decision, and where each unit stands for a period. Pure rules over plain records.

A report's record (``submissions``): the first submission's ``submitted_at`` / ``submitted_by`` / ``late`` /
``due_at`` (the deadline judges the first submission), ``status`` (submitted → returned → submitted … → accepted),
``version`` (the latest), the latest content at the top (``text`` and ``attachment_links``, or ``report``) and
every version kept in ``versions`` (who and when, its content, its note), every decision in ``reviews``. Records
made before versions existed hold one version: their top-level content.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.calendar import is_late

from .errors import Conflict, Invalid
from .projection import Record

KINDS = ("action_plan", "monthly")
KIND_ZH = {"action_plan": "行动计划", "monthly": "月报"}
# The content of a version, per kind (the rest of a record is its history).
CONTENT = {"action_plan": ("text", "attachment_links"), "monthly": ("report",)}


class ReportStatus(StrEnum):
    """Where a unit stands for one report of one period (the province listing)."""

    ACCEPTED = "accepted"  # the province office accepted it
    RETURNED = "returned"  # returned with a comment, to be amended
    LATE = "late"  # submitted (first version after the deadline), awaiting review
    SUBMITTED = "submitted"  # submitted on time, awaiting review
    MISSING = "missing"  # not submitted, the deadline has passed
    PENDING = "pending"  # not submitted, the deadline has not passed yet


STATUS_ZH: Mapping[str, str] = {
    ReportStatus.ACCEPTED: "已通过",
    ReportStatus.RETURNED: "已退回",
    ReportStatus.LATE: "逾期报送",
    ReportStatus.SUBMITTED: "已报送",
    ReportStatus.MISSING: "未报送（已逾期）",
    ReportStatus.PENDING: "未报送（未到截止时间）",
}


class ReviewDecision(StrEnum):
    ACCEPT = "accept"
    RETURN = "return"


def report_id(kind: str, unit_id: str, period: str) -> str:
    return f"{kind}:{unit_id}:{period}"


def versions(doc: Mapping[str, Any]) -> list[Record]:
    """Every version of a report, the first first (a record from before versions: its one version)."""
    found = doc.get("versions")
    if found:
        return [dict(v) for v in found]
    first: Record = {
        "version": 1,
        "submitted_at": doc["submitted_at"],
        "submitted_by": doc.get("submitted_by"),
        "submitted_by_name": doc.get("submitted_by_name"),
        "note": None,
    }
    first.update({k: doc.get(k) for k in CONTENT[str(doc["kind"])]})
    return [first]


def version_of(doc: Mapping[str, Any]) -> int:
    return int(doc.get("version") or 1)


def status_of(doc: Mapping[str, Any]) -> str:
    """The record's review status: submitted, returned or accepted (a record from before reviews: submitted)."""
    return str(doc.get("status") or "submitted")


def first_version(content: Mapping[str, Any], at: datetime, by: str, by_name: str | None) -> Record:
    return {"version": 1, "submitted_at": at, "submitted_by": by, "submitted_by_name": by_name, "note": None,
            **content}  # fmt: skip


def amended(
    doc: Mapping[str, Any], content: Mapping[str, Any], note: str | None, at: datetime, by: str, by_name: str | None
) -> Record:
    """The fields a new version sets (the latest content on top, the version appended): refused once accepted."""
    if status_of(doc) == "accepted":
        what = KIND_ZH[str(doc["kind"])]
        raise Conflict("report_accepted", f"该{what}已由省级办公室审核通过，不能再修改")
    number = version_of(doc) + 1
    entry = {"version": number, "submitted_at": at, "submitted_by": by, "submitted_by_name": by_name, "note": note,
             **content}  # fmt: skip
    return {**content, "status": "submitted", "version": number, "versions": [*versions(doc), entry]}


def reviewed(
    doc: Mapping[str, Any], decision: ReviewDecision, version: int, comment: str | None, at: datetime, by: str,
    by_name: str | None,
) -> Record:  # fmt: skip
    """The fields a decision of the province office sets. It decides on the latest version, once: a version already
    accepted or returned waits for the unit (a new version), and a return says why."""
    current = version_of(doc)
    if version != current:
        raise Conflict("stale_version", f"审核的是第{version}版，当前为第{current}版，请查看最新版本后再审核")
    status = status_of(doc)
    if status != "submitted":
        state = "已通过" if status == "accepted" else "已退回，待队伍修改后重新报送"
        raise Conflict("already_reviewed", f"第{current}版{state}")
    comment = (comment or "").strip() or None
    if decision is ReviewDecision.RETURN and comment is None:
        raise Invalid("comment_required", "退回时须填写退回意见")
    entry = {"version": current, "decision": decision.value, "comment": comment, "reviewed_at": at,
             "reviewed_by": by, "reviewed_by_name": by_name}  # fmt: skip
    reviews = [*(doc.get("reviews") or []), entry]
    return {"status": "accepted" if decision is ReviewDecision.ACCEPT else "returned", "reviews": reviews}


def listing_status(doc: Mapping[str, Any] | None, due_at: datetime, now: datetime) -> ReportStatus:
    """Where a unit stands for one report: its review first, then whether and when it was submitted."""
    if doc is None:
        return ReportStatus.MISSING if is_late(now, due_at) else ReportStatus.PENDING
    status = status_of(doc)
    if status == "accepted":
        return ReportStatus.ACCEPTED
    if status == "returned":
        return ReportStatus.RETURNED
    return ReportStatus.LATE if doc.get("late") else ReportStatus.SUBMITTED


def listing_row(doc: Mapping[str, Any] | None, due_at: datetime, now: datetime) -> Record:
    """One unit's line of the listing (the unit's own fields are added by the caller)."""
    status = listing_status(doc, due_at, now)
    row: Record = {"status": status.value, "status_zh": STATUS_ZH[status], "due_at": due_at}
    if doc is None:
        return {**row, "version": None, "submitted_at": None, "last_submitted_at": None, "late": None,
                "reviewed_at": None}  # fmt: skip
    last = versions(doc)[-1]
    reviews: Sequence[Mapping[str, Any]] = doc.get("reviews") or []
    return {
        **row,
        "version": version_of(doc),
        "submitted_at": doc["submitted_at"],
        "last_submitted_at": last["submitted_at"],
        "late": bool(doc.get("late")),
        "reviewed_at": reviews[-1]["reviewed_at"] if reviews else None,
    }


def counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many units stand at each status (every status named, zero included)."""
    found = {s.value: 0 for s in ReportStatus}
    for row in rows:
        found[str(row["status"])] += 1
    return found
