"""Who may reach what — the one scope rule of the platform, used by the gateway and by every service.

- A province admin reaches everything.
- A unit admin reaches its own unit and every unit below it (never beside or above), and a volunteer when one of
  the volunteer's units is in that subtree.
- A volunteer reaches itself (and the public listings, which are no one's scope).
- A system key (read-only) reads the organisational and statistical data listed in :data:`SYSTEM_READS`
  province-wide; it writes nothing and reads no person's record.

A unit is known by its *path*: its ancestors from the top down, then itself. :func:`covers` is the pure rule;
:class:`Reach` is the rule applied to one caller with the subtree read once from a unit copy that has ``_id`` and
``ancestors`` (the registry's own units, the gateway's and reporting's event-fed copies, the copy kept by
:func:`shared.unit_paths.attach_unit_paths` in activities and notifier, read by :func:`shared.unit_paths.reach`).

This module is the rule alone — no framework, no driver — so that every service's domain and use cases can apply
it; the caller is anything with a ``role``, a ``unit_id`` and a ``volunteer_id`` (:class:`Caller`, which the
gateway's signed :class:`shared.identity.Identity` is). The 404/403 answer of an out-of-scope request is
:func:`shared.problems.out_of_scope`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# What a system key may read (paths below /api/v1, ``*`` one segment): the organisation, activities and demands,
# statistics, reports and deadlines — no person's record (volunteers, a volunteer's hours or certificate, sign-ups,
# attendance, check-in codes, notifications, the 附件 exports are not listed). The gateway enforces what each operation
# declares (``shared.access``, role ``system``); tests/architecture/test_access.py keeps the declarations equal to
# this list.
SYSTEM_READS: tuple[tuple[str, ...], ...] = (
    ("units",), ("units", "*"), ("units", "*", "subtree"), ("units", "*", "path"),
    ("activities",), ("activities", "*"), ("demands",), ("demands", "*"),
    ("compliance",), ("stats", "units", "*"), ("monthly-reports", "*", "*"),
    ("exports", "compliance.xlsx"), ("exports", "monthly", "*", "*"), ("charts", "*"),
    ("deadlines",), ("obligations", "*"), ("subscriptions",),
)  # fmt: skip


class Caller(Protocol):
    """Who asks: a role (``province_admin``, ``unit_admin``, ``volunteer``, ``system``), its unit, its volunteer."""

    @property
    def role(self) -> str: ...

    @property
    def unit_id(self) -> str | None: ...

    @property
    def volunteer_id(self) -> str | None: ...


def unit_path(unit: Mapping[str, Any]) -> list[str]:
    """The path of a unit document (``_id`` and ``ancestors``): top down, the unit last."""
    return [*(unit.get("ancestors") or []), str(unit["_id"])]


def covers(identity: Caller, path: Sequence[str]) -> bool:
    """Pure rule: may ``identity`` act on the unit whose path is ``path`` (empty: an unknown unit)?"""
    if identity.role == "province_admin":
        return True
    if identity.role != "unit_admin" or not identity.unit_id:
        return False
    return identity.unit_id in path


def covers_volunteer(identity: Caller, volunteer_id: str, paths: Iterable[Sequence[str]]) -> bool:
    """Pure rule: may ``identity`` reach the volunteer whose units have ``paths``?"""
    if identity.role == "volunteer":
        return bool(identity.volunteer_id) and identity.volunteer_id == volunteer_id
    return any(covers(identity, p) for p in paths) or identity.role == "province_admin"


def system_may_read(segments: Sequence[str]) -> bool:
    """May a system key read the resource at these path segments (below /api/v1)? Issuing a certificate is a GET
    but a write: not listed."""
    return any(
        len(p) == len(segments) and all(x in ("*", s) for x, s in zip(p, segments, strict=True)) for p in SYSTEM_READS
    )


@dataclass(frozen=True)
class Reach:
    """The rule applied to one caller: ``units`` is the caller's subtree (None: every unit; empty: none)."""

    identity: Caller
    units: frozenset[str] | None

    def unit(self, unit_id: str | None) -> bool:
        if self.units is None:
            return True
        return unit_id is not None and unit_id in self.units

    def volunteer(self, volunteer_id: str, unit_ids: Iterable[str]) -> bool:
        """A volunteer (whose units are ``unit_ids``) in reach: itself, or one of its units in the subtree."""
        if self.identity.role == "volunteer":
            return bool(self.identity.volunteer_id) and self.identity.volunteer_id == volunteer_id
        return any(self.unit(u) for u in unit_ids)

    @property
    def admin(self) -> bool:
        return self.identity.role in ("province_admin", "unit_admin")


def subtree_reach(identity: Caller, subtree: Iterable[str], *, system_reads: bool = False) -> Reach:
    """The caller's :class:`Reach` given the ids of its unit's subtree (read by the caller's adapter). A unit admin's
    own unit is in it even before the copy knows it."""
    if identity.role == "province_admin" or (system_reads and identity.role == "system"):
        return Reach(identity, None)
    if identity.role != "unit_admin" or not identity.unit_id:
        return Reach(identity, frozenset())
    return Reach(identity, frozenset({*subtree, identity.unit_id}))
