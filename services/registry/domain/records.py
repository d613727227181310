"""The registry's aggregates as stored records, and the events they announce: a unit's and a volunteer's document
(plain data: the storage port keeps them as they are), their derived fields, and the events built from them.
ID-card numbers appear here only as ciphertext, a keyed hash and a masked text, never in an event."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from services.registry.domain.codes import MembershipStatus
from services.registry.domain.contact import ContactPerson
from services.registry.domain.leaders import Leader, check_leaders
from services.registry.domain.memberships import Membership
from services.registry.domain.scope import Scope
from services.registry.domain.units import UnitProfile, initial_unit_status, member_shortfall
from services.registry.domain.volunteers import VolunteerProfile
from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    ContactRef,
    Event,
    UnitRegistered,
    UnitUpdated,
    VolunteerJoinedUnit,
    VolunteerRegistered,
    VolunteerUpdated,
)
from shared.vocabulary import LeaderRole, UnitKind

Doc = dict[str, Any]

SOURCE = "/stvs/registry"
CORPS_KEY = "#province_corps"  # the name reservation of the one province corps
# Never returned by a read: the ciphertext, the outbox bookkeeping, the derived search and uniqueness keys.
HIDDEN = {"id_cipher": 0, "_outbox": 0, "_outbox_n": 0, "name_terms": 0, "id_hash": 0}
_REGISTERED_ENVELOPE = Envelope[VolunteerRegistered]
TERM_CHARS = 3  # the longest part of a name indexed as a term


def name_terms(name: str | None) -> list[str]:
    """Every part of ``name`` (contiguous characters) up to TERM_CHARS long, once each, sorted."""
    if not name:
        return []
    found: set[str] = set()
    for start in range(len(name)):
        for end in range(start + 1, min(len(name), start + TERM_CHARS) + 1):
            found.add(name[start:end])
    return sorted(found)


def search_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The derived fields a volunteer document carries for searches (set on every write of its name)."""
    return {"name_terms": name_terms(doc.get("name"))}


def leader_counts(leaders: Iterable[Mapping[str, Any]]) -> dict[str, int]:

    counts = Counter(LeaderRole(x["role"]).label for x in leaders)
    return dict(counts)


def unit_event(doc: Mapping[str, Any], cls: type[UnitRegistered] | type[UnitUpdated], **extra: Any) -> Envelope[Any]:
    contact = doc.get("contact")
    data = cls(
        unit_id=doc["_id"],
        name=doc["name"],
        kind=doc["kind"],
        parent_id=doc.get("parent_id"),
        ancestors=list(doc.get("ancestors", [])),
        city=doc.get("city"),
        status=doc["status"],
        registered_at=doc["registered_at"],
        leader_counts=leader_counts(doc.get("leaders", [])),
        contact=ContactRef(name=contact["name"], email=contact.get("email")) if contact else None,
        version=doc["version"],
        **extra,
    )
    return Envelope.new(data, source=SOURCE, subject=doc["_id"])


def volunteer_event(
    doc: Mapping[str, Any], cls: type[VolunteerRegistered] | type[VolunteerUpdated], **extra: Any
) -> Envelope[Any]:
    data = cls(
        volunteer_id=doc["_id"],
        platform_number=doc["platform_number"],
        display_name=doc["name"],
        status=doc.get("status", "active"),
        unit_ids=list(doc.get("unit_ids", [])),
        professional_field=doc.get("professional_field"),
        title=doc.get("title"),
        skills=list(doc.get("skills", [])),
        registered_at=doc["registered_at"],
        version=doc["version"],
        **extra,
    )
    return Envelope.new(data, source=SOURCE, subject=doc["_id"])


def envelope(event: Event, subject: str) -> Envelope[Any]:
    return Envelope.new(event, source=SOURCE, subject=subject)


def profile_fields(profile: UnitProfile) -> Doc:
    return {
        "name": profile.name,
        "kind": profile.kind.value,
        "city": profile.city,
        "credit_code": profile.credit_code,
        "phone": profile.phone,
        "address": profile.address,
        "founded_on": profile.founded_on.isoformat() if profile.founded_on else None,
        "declared_members": profile.declared_members,
        "leaders": [x.model_dump(mode="json") for x in profile.leaders],
    }


def unit_profile(doc: Mapping[str, Any]) -> UnitProfile:
    founded = doc.get("founded_on")
    return UnitProfile(
        name=doc["name"],
        kind=UnitKind(doc["kind"]),
        city=doc.get("city"),
        credit_code=doc.get("credit_code"),
        phone=doc.get("phone"),
        address=doc.get("address"),
        founded_on=date.fromisoformat(founded) if founded else None,
        declared_members=doc.get("declared_members"),
        leaders=[Leader.model_validate(x) for x in doc.get("leaders", [])],
    )


VOLUNTEER_PROFILE_FIELDS = (
    "name",
    "gender",
    "mobile",
    "email",
    "employer",
    "title",
    "title_level",
    "education",
    "professional_field",
    "political_status",
    "skills",
    "service_areas",
)


def volunteer_fields(profile: VolunteerProfile) -> Doc:
    """The stored profile fields (``profile.model_dump(mode="json")`` restricted to VOLUNTEER_PROFILE_FIELDS, read
    directly: a bulk import builds 50,000 of these and the generic dump costs several times more)."""
    p = profile
    return {
        "name": p.name,
        "gender": p.gender.value,
        "mobile": p.mobile,
        "email": p.email,
        "employer": p.employer,
        "title": p.title,
        "title_level": p.title_level.value,
        "education": p.education.value,
        "professional_field": p.professional_field,
        "political_status": p.political_status.value,
        "skills": list(p.skills),
        "service_areas": [a.value for a in p.service_areas],
    }


def memberships_of(doc: Mapping[str, Any]) -> list[Membership]:
    return [
        Membership.model_validate({"unit_id": uid, **{k: v for k, v in m.items() if k != "path"}})
        for uid, m in (doc.get("memberships") or {}).items()
    ]


def membership_entry(m: Membership, path: Sequence[str]) -> Doc:
    return {**m.model_dump(mode="python", exclude={"unit_id"}), "status": m.status.value, "path": list(path)}


def derived_membership_fields(memberships: Mapping[str, Mapping[str, Any]]) -> Doc:
    """unit_ids (active) and scope_units (every unit at or above an open membership) for listings/scope."""
    unit_ids = [uid for uid, m in memberships.items() if m["status"] == MembershipStatus.ACTIVE.value]
    scope: dict[str, None] = {}
    for m in memberships.values():
        if m["status"] in (MembershipStatus.ACTIVE.value, MembershipStatus.PENDING.value):
            for uid in m.get("path", []):
                scope[uid] = None
    return {"unit_ids": unit_ids, "scope_units": list(scope)}


def new_unit_id() -> str:
    return "u" + uuid.uuid4().hex[:16]


def new_unit_doc(
    profile: UnitProfile,
    parent: Mapping[str, Any] | None,
    contact: ContactPerson | None,
    member_approval: bool,
    scope: Scope,
    now: datetime,
) -> Doc:
    """A new unit: active when the province registers it, else pending; the city is inherited."""
    status = initial_unit_status(registered_by_province=scope.province)
    return {
        "_id": new_unit_id(),
        **profile_fields(profile),
        "city": profile.city or (parent.get("city") if parent else None),
        "parent_id": parent["_id"] if parent else None,
        "ancestors": [*parent.get("ancestors", []), parent["_id"]] if parent else [],
        "status": status.value,
        "reason": None,
        "contact": contact.model_dump() if contact else None,
        "member_approval": member_approval,
        "registered_at": now,
        "registered_by": scope.identity.subject,
        "registrar_unit_id": None if scope.province else scope.identity.unit_id,
        "updated_at": now,
        "version": 1,
    }


def import_event(doc: Mapping[str, Any]) -> Envelope[Any]:
    """The one event of a volunteer registered by a bulk import: ``VolunteerRegistered`` (its ``unit_ids``
    carry the memberships, so consumers need no ``VolunteerJoinedUnit`` of the same version). Built with the
    envelope class parametrized once: ``Envelope.new`` re-parametrizes the generic on every call."""
    data = VolunteerRegistered(
        volunteer_id=doc["_id"],
        platform_number=doc["platform_number"],
        display_name=doc["name"],
        status=doc.get("status", "active"),
        unit_ids=list(doc.get("unit_ids", [])),
        professional_field=doc.get("professional_field"),
        title=doc.get("title"),
        skills=list(doc.get("skills", [])),
        registered_at=doc["registered_at"],
        version=doc["version"],
    )
    return _REGISTERED_ENVELOPE(
        id=str(uuid.uuid4()),
        source=SOURCE,
        type=data.event_type,
        subject=doc["_id"],
        time=datetime.now(UTC),
        data=data,
    )


def registration_events(doc: Mapping[str, Any]) -> list[Envelope[Any]]:
    events = [volunteer_event(doc, VolunteerRegistered)]
    for uid in doc["unit_ids"]:
        joined = doc["memberships"][uid]["joined_at"]
        events.append(
            envelope(
                VolunteerJoinedUnit(volunteer_id=doc["_id"], unit_id=uid, joined_at=joined, version=doc["version"]),
                doc["_id"],
            )
        )
    return events


def strip(doc: Mapping[str, Any]) -> Doc:
    """A document without the secret and the outbox bookkeeping."""
    return {k: v for k, v in doc.items() if k not in HIDDEN}


def compliance(doc: Mapping[str, Any], members: int | None = None) -> Doc:
    """How far a unit is from the notice's leader counts and first-batch minimum (information, not errors)."""
    kind = UnitKind(doc["kind"])
    gaps = check_leaders(kind, [Leader.model_validate(x) for x in doc.get("leaders", [])])
    out: Doc = {"leader_gaps": [g.message for g in gaps]}
    if members is not None:
        out["member_shortfall"] = member_shortfall(kind, members)
    return out


def volunteer_doc(
    number: str,
    profile: VolunteerProfile,
    now: datetime,
    scope: Scope,
    memberships: Sequence[tuple[Membership, Sequence[str]]] | Mapping[str, Doc],
    *,
    id_hash: str,
    id_cipher: str,
    id_masked: str,
) -> Doc:
    """A new volunteer's document. ``memberships`` as (membership, unit path) pairs, or as the stored entries
    already built (a bulk import builds them once per unit and shares them: they are never mutated)."""
    if isinstance(memberships, Mapping):
        entries = memberships
    else:
        entries = {m.unit_id: membership_entry(m, path) for m, path in memberships}
    return {
        "_id": number,
        "platform_number": number,
        **volunteer_fields(profile),
        "name_terms": name_terms(profile.name),
        "id_hash": id_hash,
        "id_cipher": id_cipher,
        "id_masked": id_masked,
        "status": "active",
        "memberships": entries,
        **derived_membership_fields(entries),
        "account": scope.identity.subject if scope.identity.role == "volunteer" else None,
        "registered_at": now,
        "registered_by": scope.identity.subject,
        "updated_at": now,
        "version": 1,
    }
