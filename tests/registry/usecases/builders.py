"""Builders of the registry's use-case tests: callers, drafts, the ports in memory and a small unit tree."""

from __future__ import annotations

from dataclasses import dataclass

from services.registry.domain.leaders import LeaderDraft
from services.registry.domain.scope import Scope
from services.registry.domain.units import UnitDraft
from services.registry.domain.volunteers import VolunteerDraft
from services.registry.usecases.imports import Imports
from services.registry.usecases.units import UnitRegistration, Units
from services.registry.usecases.volunteers import Volunteers
from shared.identity import Identity
from tests.registry.helpers import volunteer_body
from tests.registry.usecases.memory import Ledger, MemoryRegistry

PROVINCE = Scope(Identity(subject="province", role="province_admin"))


def admin_of(unit_id: str, subject: str | None = None) -> Scope:
    return Scope(Identity(subject=subject or f"admin:{unit_id}", role="unit_admin", unit_id=unit_id))


def volunteer_scope(subject: str, volunteer_id: str | None = None) -> Scope:
    return Scope(Identity(subject=subject, role="volunteer", volunteer_id=volunteer_id))


def leaders(*pairs: tuple[str, str]) -> list[LeaderDraft]:
    return [LeaderDraft(name=name, role=role) for name, role in pairs]


def unit_asked(kind: str, base: str, parent_id: str | None = None, **draft: object) -> UnitRegistration:
    return UnitRegistration(draft=UnitDraft(kind=kind, **draft), base=base, parent_id=parent_id)  # type: ignore[arg-type]


def person(seq: int, **over: object) -> VolunteerDraft:
    body = volunteer_body(seq, **over)  # type: ignore[arg-type]
    body.pop("unit_id", None)
    return VolunteerDraft.model_validate(body)


@dataclass
class Registry:
    store: MemoryRegistry
    ledger: Ledger
    units: Units
    volunteers: Volunteers
    imports: Imports


@dataclass
class World:
    corps: str
    city: str
    county: str
    other_city: str
