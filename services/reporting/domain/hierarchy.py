"""The hierarchy as the unit records give it: a subtree, who is below whom, and the levels of the roll-up.

Roll-up happens at read time: each unit record names its ancestors, so a subtree is found from them and a unit that
moves in the tree takes its numbers with it as soon as its new snapshot arrives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .projection import Record
from .vocabulary import UnitKind

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


@dataclass
class Tree:
    """The unit records and the subtree of one root."""

    units: dict[str, Record]  # the subtree's units by id
    root: Record
    members: list[Record]  # root first
    below: dict[str, list[str]]  # unit id -> ids of itself and its descendants

    def member_ids(self) -> list[str] | None:
        """The subtree's unit ids; None for the top of the hierarchy (every unit: no list to send)."""
        if not self.root.get("ancestors") and self.root.get("kind") == UnitKind.PROVINCE_CORPS:
            return None
        return [str(u["_id"]) for u in self.members]

    def only_members(self, docs: Mapping[str, Record]) -> dict[str, Record]:
        members = {str(u["_id"]) for u in self.members}
        return {uid: doc for uid, doc in docs.items() if uid in members}


def tree_of(units: dict[str, Record], root_id: str) -> Tree:
    """The subtree of ``root_id`` (present in ``units``); a rejected application is no unit of the hierarchy
    (unless asked for by name)."""
    members = [u for u in subtree(units, root_id) if u.get("status") != "rejected" or u["_id"] == root_id]
    return Tree(units, units[root_id], members, descendants_index(members))


def subtree(units: Mapping[str, Record], root: str) -> list[Record]:
    """The unit and every unit below it (from the snapshots' ancestors), root first, then by depth and name."""
    found = [u for u in units.values() if u["_id"] == root or root in (u.get("ancestors") or [])]
    return sorted(found, key=lambda u: (u["_id"] != root, len(u.get("ancestors") or []), u.get("name", "")))


def descendants_index(units: Iterable[Record]) -> dict[str, list[str]]:
    """unit id → ids of the unit and all its descendants."""
    out: dict[str, list[str]] = {}
    for unit in units:
        uid = str(unit["_id"])
        out.setdefault(uid, []).append(uid)
        for ancestor in unit.get("ancestors") or []:
            out.setdefault(str(ancestor), []).append(uid)
    return out


def by_level(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows grouped into the roll-up's levels (one export sheet each), in the hierarchy's order."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for kind, level in LEVEL_ZH.items():
        chosen = [r for r in rows if r["kind"] == kind]
        if chosen:
            out[level] = chosen
    return out


def headcount(unit: Mapping[str, Any]) -> int:
    """A unit's active members (never below zero, whatever order the events came in)."""
    return max(0, int(unit.get("volunteers") or 0))
