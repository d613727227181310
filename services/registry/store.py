"""Registry storage and use cases: units, volunteers, memberships, on MongoDB (any number of replicas).

``units`` and ``volunteers`` are the aggregates, written through the storage port (:mod:`shared.aggregates`): a
read-decide-write is a conditional write on the version read (decided again after a concurrent change), its events
staged in the same write (the outbox). A volunteer's ``id_hash`` (keyed hash of the ID-card number: one person
once) and ``_id`` (the platform number) are kept unique by unique indexes. A unit's name is reserved while the unit
is live by a ``unit_names`` document (``_id`` = the name, plus ``#province_corps`` for the one corps) written in
the same transaction as the unit: a name moves (a rename) and is freed (a rejection). (A unique index on a field of
the unit that changes value would say the same on MongoDB; SecantusDB 0.5.3 keeps the old value's key in a unique
index after an update, measured, so a freed name would stay taken there. Inserts and deletes are exact on both.)
``counters`` hands out platform numbers by one atomic ``$inc``. Listings and searches are indexed queries
(:mod:`services.registry.search`).

ID-card numbers are stored only encrypted (``id_cipher``) and masked (``id_masked``); never logged, never in
an event.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.registry.crypto import IdNumberCipher
from services.registry.domain.codes import MembershipStatus, UnitStatus
from services.registry.domain.contact import ContactPerson
from services.registry.domain.errors import (
    CorpsExistsError,
    DuplicateNameError,
    DuplicatePersonError,
    FieldError,
    ForbiddenError,
    InvalidParentError,
    NotFoundError,
    ValidationFailedError,
    refuse,
)
from services.registry.domain.leaders import Leader, check_leaders
from services.registry.domain.memberships import (
    Membership,
    approve_membership,
    leave_unit,
    reject_membership,
    request_membership,
)
from services.registry.domain.scope import Scope
from services.registry.domain.units import (
    CORPS_NAME,
    UnitProfile,
    check_parent,
    initial_unit_status,
    member_shortfall,
    transition_unit,
)
from services.registry.domain.volunteers import (
    VolunteerDraft,
    VolunteerProfile,
    format_platform_number,
    validate_volunteer,
)
from services.registry.search import VOCABULARY, VolunteerQuery, search_fields, vocabulary_entries, vocabulary_filter
from shared import clock
from shared.aggregates import DEFAULT_ATTEMPTS, Aggregates, Contended, Write, backoff, in_transaction
from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    ContactRef,
    Event,
    UnitRegistered,
    UnitUpdated,
    VolunteerJoinedUnit,
    VolunteerLeftUnit,
    VolunteerRegistered,
    VolunteerUpdated,
)
from shared.messaging.outbox import Outbox, Transaction
from shared.storage import Doc, Indexes
from shared.vocabulary import LeaderRole, UnitKind

log = logging.getLogger("stvs.registry.store")

UNITS = "units"
VOLUNTEERS = "volunteers"
UNIT_NAMES = "unit_names"
COUNTERS = "counters"
CORPS_KEY = "#province_corps"  # the reservation of the one province corps
SOURCE = "/stvs/registry"
MAX_PAGE = 200
BACKFILL_BATCH = 500
# the in-memory directory's stored cards and the keyed-hash lookup documents (now the unique id_hash index)
RETIRED_COLLECTIONS = ("volunteer_cards", "volunteer_cards_state", "id_hashes")
DUPLICATE_KEY = 11000

_REGISTERED_ENVELOPE = Envelope[VolunteerRegistered]

# Never returned by a read: the ciphertext, the outbox bookkeeping, the derived search and uniqueness keys.
HIDDEN = {"id_cipher": 0, "_outbox": 0, "_outbox_n": 0, "name_terms": 0, "id_hash": 0}
# written by a 附件2 import not yet committed (services/registry/import_log.py): left out of every read
PENDING_IMPORT = "_import"
NOT_PENDING = {PENDING_IMPORT: {"$exists": False}}
_PRESENT = {"$exists": True}  # partial unique index: old documents get their key from the backfill


class _Moved(Exception):
    """The unit changed between the transaction's read and its write: run it again."""


def indexes() -> Indexes:
    """Declared at start-up: what keeps names and persons unique, and what listings and searches read."""
    ix = Indexes()
    ix.add(UNITS, "ancestors", "registered_at", "_id")
    ix.add(UNITS, "parent_id", "registered_at", "_id")
    ix.add(UNITS, "registered_at", "_id")
    # one person once (old documents get their id_hash by the start-up backfill)
    ix.add(VOLUNTEERS, "id_hash", unique=True, partial={"id_hash": _PRESENT})
    ix.add(VOLUNTEERS, "scope_units", "_id")
    ix.add(VOLUNTEERS, "name_terms", "_id")
    ix.add(VOLUNTEERS, "skills", "_id")
    ix.add(VOLUNTEERS, "title", "_id")
    ix.add(VOLUNTEERS, "professional_field", "_id")
    ix.add(VOCABULARY, "field", "value")
    return ix


# ----------------------------------------------------------------------------------------------------------
# Documents <-> events
# ----------------------------------------------------------------------------------------------------------


def unit_filter(scope: Scope) -> dict[str, Any]:
    """The units a caller may list: all for the province, a unit admin's own and those below, else none."""
    if scope.province:
        return {}
    own = scope.own_unit
    if own is None:
        return {"_id": "#none"}
    return {"$or": [{"_id": own}, {"ancestors": own}]}


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


# ----------------------------------------------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Page:
    items: list[Doc]
    total: int
    skip: int
    limit: int


class Registry:
    """Use cases over the registry's collections; every write stages its events in the same document write, and
    none relies on this process being the only one."""

    def __init__(self, db: Any, outbox: Outbox, cipher: IdNumberCipher, *, year: int) -> None:
        self.db = db
        self.outbox = outbox
        self.cipher = cipher
        self.year = year
        self.units = Aggregates(outbox, UNITS)
        self.volunteers = Aggregates(outbox, VOLUNTEERS)

    # -- low level --------------------------------------------------------------------------------------
    async def next_platform_numbers(self, n: int = 1) -> list[str]:
        """``n`` fresh platform numbers (HB + year + sequence); a block for a bulk import. One atomic ``$inc``."""
        counters = self.db[COUNTERS]
        key = f"volunteer:{self.year}"
        for attempt in range(3):
            try:
                doc = await counters.find_one_and_update(
                    {"_id": key}, {"$inc": {"seq": n}}, upsert=True, return_document=ReturnDocument.AFTER
                )
                break
            except DuplicateKeyError:  # two first upserts at once: the other one created it, $inc it again
                if attempt == 2:
                    raise
        last = int(doc["seq"])
        return [format_platform_number(self.year, seq) for seq in range(last - n + 1, last + 1)]

    async def unit(self, unit_id: str) -> Doc:
        doc: Doc | None = await self.db[UNITS].find_one({"_id": unit_id}, HIDDEN)
        if doc is None:
            raise NotFoundError("未找到该队伍")
        return doc

    async def unit_id_by_name(self, name: str) -> str | None:
        """The live (not rejected) unit of this name."""
        doc = await self.db[UNIT_NAMES].find_one({"_id": name})
        return None if doc is None else str(doc["unit_id"])

    async def corps_exists(self) -> bool:
        return await self.db[UNIT_NAMES].find_one({"_id": CORPS_KEY}) is not None

    async def reserve_names(self, unit_id: str, keys: Sequence[str], tx: Transaction) -> None:
        """Reserve names (and the corps key) for a unit inside a transaction; a taken one aborts it."""
        for key in keys:
            try:
                await self.db[UNIT_NAMES].insert_one(
                    {"_id": key, "unit_id": unit_id, "at": clock.now()}, session=tx.session
                )
            except DuplicateKeyError:
                if key == CORPS_KEY:
                    raise CorpsExistsError() from None
                raise DuplicateNameError(key) from None

    async def _change_unit(self, unit_id: str, decide: Any) -> Doc | None:
        """A unit's read-decide-write together with its name reservations, in one transaction.

        ``decide(doc)`` returns None (nothing to write) or ``(Write, names to reserve, names to free)``. A
        concurrent change of the unit is a write conflict: the transaction is run again on the fresh document."""

        async def work(tx: Transaction) -> Doc | None:
            doc = await self.units.get(unit_id, tx)
            decided = await decide(doc)
            if decided is None:
                return None
            write, reserve, free = decided
            assert doc is not None  # decide refuses a unit that does not exist
            await self.reserve_names(unit_id, reserve, tx)
            for key in free:
                await self.db[UNIT_NAMES].delete_one({"_id": key, "unit_id": unit_id}, session=tx.session)
            if not await self.units.write(doc, write, tx=tx):
                raise _Moved()
            result: Doc = write.result
            return result

        for attempt in range(DEFAULT_ATTEMPTS):
            try:
                return await in_transaction(self.outbox, work)
            except _Moved:
                await backoff(attempt)
        raise Contended(UNITS, unit_id, DEFAULT_ATTEMPTS)

    async def remember_vocabulary(self, docs: Iterable[Mapping[str, Any]]) -> None:
        """The titles and fields these volunteers carry, in the vocabulary searches match texts against; written
        before the volunteers themselves, so a search never misses a stored volunteer for want of its value."""
        entries = vocabulary_entries(docs)
        if not entries:
            return
        try:
            await self.db[VOCABULARY].insert_many(entries, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise

    async def backfill(self) -> int:
        """Give volunteers written before the indexed fields existed their ``id_hash``, ``name_terms`` and
        vocabulary, then drop the retired collections. Idempotent (any replica may run
        it at start); each write is conditional on the version read, so a concurrent change is never overwritten
        (the next batch reads it again). Returns how many documents it completed."""
        done = 0
        volunteers = self.db[VOLUNTEERS]
        fields = {"name": 1, "id_cipher": 1, "title": 1, "professional_field": 1, "version": 1}
        while True:
            batch = await volunteers.find({"name_terms": {"$exists": False}}, fields).limit(BACKFILL_BATCH).to_list()
            if not batch:
                for retired in RETIRED_COLLECTIONS:  # what the single-process registry kept; nothing reads them
                    await self.db.drop_collection(retired)
                return done
            await self.remember_vocabulary(batch)
            progress = 0
            for doc in batch:
                sets = search_fields(doc)
                if doc.get("id_cipher"):
                    sets["id_hash"] = self.cipher.hash(self.cipher.decrypt(doc["id_cipher"]))
                where = {"_id": doc["_id"], "version": doc.get("version")}
                try:
                    result = await volunteers.update_one(where, {"$set": sets})
                except DuplicateKeyError:
                    log.warning("volunteer %s is a second record of a registered person", doc["_id"])
                    sets.pop("id_hash")
                    result = await volunteers.update_one(where, {"$set": sets})
                progress += result.modified_count
            done += progress
            if not progress:  # every one changed meanwhile, again and again: leave them to the next start
                return done

    # -- units ------------------------------------------------------------------------------------------
    @staticmethod
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

    async def register_unit(
        self,
        profile: UnitProfile,
        *,
        parent_id: str | None,
        contact: ContactPerson | None,
        member_approval: bool,
        scope: Scope,
    ) -> Doc:
        if not scope.admin:
            raise ForbiddenError("只有管理员可以注册队伍")
        check_leaders(profile.kind, profile.leaders)  # role errors; gaps are information
        parent = await self.unit(parent_id) if parent_id else None
        if parent_id and parent is None:  # pragma: no cover - unit() raises
            raise NotFoundError("未找到上级队伍")
        if parent is not None and not scope.manages_unit(parent):
            raise refuse("上级队伍")
        if parent is None and not scope.province:
            raise ForbiddenError("只有省科协可以注册总队")
        if parent is not None and parent["status"] == UnitStatus.REJECTED.value:
            raise InvalidParentError("上级队伍的注册已被驳回，不能在其下注册队伍")
        corps = profile.kind is UnitKind.PROVINCE_CORPS
        check_parent(
            profile.kind,
            UnitKind(parent["kind"]) if parent else None,
            corps_exists=corps and await self.corps_exists(),
        )
        doc = self.new_unit_doc(profile, parent, contact, member_approval, scope, clock.now())

        async def work(tx: Transaction) -> None:  # the unit and its name reservations, or neither
            await self.reserve_names(doc["_id"], [profile.name, CORPS_KEY] if corps else [profile.name], tx)
            await self.units.create(doc, [unit_event(doc, UnitRegistered)], tx=tx)

        await in_transaction(self.outbox, work)
        return strip(doc)

    async def update_unit(self, unit_id: str, changes: Mapping[str, Any], scope: Scope) -> Doc:
        """Apply changed fields (already validated: name, leaders, contact, credit_code, phone, address,
        member_approval); UnitUpdated lists what changed. A new name moves the unit's name reservation in the same
        transaction."""
        unchanged: list[Doc] = []

        async def decide(doc: Doc | None) -> tuple[Write[Doc], list[str], list[str]] | None:
            if doc is None:
                raise NotFoundError("未找到该队伍")
            if not scope.manages_unit(doc):
                raise refuse()
            sets = {k: v for k, v in changes.items() if doc.get(k) != v}
            if "leaders" in sets:
                check_leaders(UnitKind(doc["kind"]), [Leader.model_validate(x) for x in sets["leaders"]])
            if "name" in sets and doc["kind"] == UnitKind.PROVINCE_CORPS.value and sets["name"] != CORPS_NAME:
                raise ValidationFailedError([FieldError("name", f"总队名称固定为“{CORPS_NAME}”")])
            if not sets:
                unchanged.append(strip(doc))
                return None
            now = clock.now()
            new = {**doc, **sets, "version": doc["version"] + 1, "updated_at": now}
            event = unit_event(new, UnitUpdated, changed=sorted(sets))
            renamed = "name" in sets and doc["status"] != UnitStatus.REJECTED.value
            return (
                Write({"$set": {**sets, "updated_at": now}}, [event], strip(new)),
                [sets["name"]] if renamed else [],
                [doc["name"]] if renamed else [],
            )

        result = await self._change_unit(unit_id, decide)
        return result if result is not None else unchanged[-1]

    async def decide_unit(self, unit_id: str, *, approve: bool, reason: str | None, scope: Scope) -> Doc:
        """The parent side approves or rejects a pending unit: the province, or an admin of a unit above the
        one that registered it (never the registrar's own unit). A rejected registration frees its name (and the
        corps key) in the same transaction."""

        async def decide(doc: Doc | None) -> tuple[Write[Doc], list[str], list[str]]:
            if doc is None:
                raise NotFoundError("未找到该队伍")
            if not scope.province:
                if scope.identity.role != "unit_admin" or not scope.sees_unit(doc):
                    raise refuse()
                registrar = doc.get("registrar_unit_id")
                above = (await self.unit(registrar)).get("ancestors", []) if registrar else []
                if scope.identity.unit_id not in above:
                    raise ForbiddenError("队伍的注册须由上级组织审核，不能由注册单位自己审核")
            target = UnitStatus.ACTIVE if approve else UnitStatus.REJECTED
            change = transition_unit(UnitStatus(doc["status"]), target, reason=reason)
            sets = {
                "status": change.status.value,
                "reason": change.reason,
                "updated_at": clock.now(),
                "decided_by": scope.identity.subject,
            }
            new = {**doc, **sets, "version": doc["version"] + 1}
            write = Write({"$set": sets}, [unit_event(new, UnitUpdated, changed=["status"])], strip(new))
            return write, [], [] if approve else [doc["name"], CORPS_KEY]

        result = await self._change_unit(unit_id, decide)
        assert result is not None
        return result

    async def list_units(
        self,
        scope: Scope,
        *,
        kind: str | None = None,
        city: str | None = None,
        status: str | None = None,
        parent_id: str | None = None,
        name: str | None = None,
        below: str | None = None,
        skip: int = 0,
        limit: int = 50,
    ) -> Page:
        filters: list[dict[str, Any]] = []
        if unit_filter(scope):
            filters.append(unit_filter(scope))
        for key, value in (
            ("kind", kind),
            ("city", city),
            ("status", status),
            ("parent_id", parent_id),
            ("name", name),
        ):
            if value is not None:
                filters.append({key: value})
        if below is not None:  # the unit itself and everything below it
            filters.append({"$or": [{"_id": below}, {"ancestors": below}]})
        query: dict[str, Any] = {"$and": filters} if len(filters) > 1 else (filters[0] if filters else {})
        return await self._page(UNITS, query, skip, limit, sort=[("registered_at", 1), ("_id", 1)])

    async def path(self, unit_id: str, scope: Scope) -> list[Doc]:
        doc = await self.unit(unit_id)
        if not scope.sees_unit(doc):
            raise refuse()
        return [await self.unit(a) for a in doc.get("ancestors", [])] + [doc]

    async def _page(self, collection: str, query: Mapping[str, Any], skip: int, limit: int, sort: Any) -> Page:
        """One page (find, sorted, skip/limit) and the total (count_documents), asked of the same index at once."""
        limit = max(1, min(limit, MAX_PAGE))
        skip = max(0, skip)
        col = self.db[collection]

        async def page() -> list[Doc]:
            return [doc async for doc in col.find(dict(query), HIDDEN).sort(sort).skip(skip).limit(limit)]

        items, total = await asyncio.gather(page(), col.count_documents(dict(query)))
        return Page(items, total, skip, limit)

    # -- volunteers -------------------------------------------------------------------------------------
    async def volunteer(self, volunteer_id: str, *, with_cipher: bool = False) -> Doc:
        doc: Doc | None = await self.db[VOLUNTEERS].find_one(
            {"_id": volunteer_id, **NOT_PENDING}, None if with_cipher else HIDDEN
        )
        if doc is None:
            raise NotFoundError("未找到该志愿者")
        return doc

    async def _visible_volunteer(self, volunteer_id: str, scope: Scope) -> Doc:
        doc = await self.volunteer(volunteer_id)
        if not scope.sees_volunteer(doc):
            raise ForbiddenError("无权访问该志愿者的信息")
        return doc

    async def holder(self, id_hash: str) -> str | None:
        """The volunteer registered under this keyed hash (unique index on ``id_hash``)."""
        doc = await self.db[VOLUNTEERS].find_one({"id_hash": id_hash}, {"_id": 1})
        return None if doc is None else str(doc["_id"])

    async def duplicate_person(self, existing_id: str, scope: Scope) -> DuplicatePersonError:
        """The refusal for a second registration: its platform number and the units the caller may see when the
        caller may see the person, else only that it is registered in another unit (no number, no unit)."""
        doc = await self.db[VOLUNTEERS].find_one(
            {"_id": existing_id}, {"memberships": 1, "platform_number": 1, "scope_units": 1, "account": 1}
        )
        if doc is None or not scope.admin or not scope.sees_volunteer(doc):
            return DuplicatePersonError(elsewhere=True)
        names: list[str] = []
        for uid, m in (doc.get("memberships") or {}).items():
            if m["status"] not in (MembershipStatus.ACTIVE.value, MembershipStatus.PENDING.value):
                continue
            unit = await self.db[UNITS].find_one({"_id": uid}, {"name": 1, "ancestors": 1})
            if unit is not None and scope.sees_unit(unit):
                names.append(unit["name"])
        return DuplicatePersonError(platform_number=doc.get("platform_number"), unit_names=names)

    async def _target_unit(self, unit_id: str | None, scope: Scope) -> Doc:
        if unit_id is None:
            if scope.identity.role == "unit_admin" and scope.identity.unit_id:
                unit_id = scope.identity.unit_id
            else:
                raise ValidationFailedError([FieldError("unit_id", "请选择要加入的队伍")])
        unit = await self.unit(unit_id)
        if scope.admin and not scope.manages_unit(unit):
            raise refuse()
        if unit["status"] == UnitStatus.REJECTED.value:
            raise ValidationFailedError([FieldError("unit_id", "该队伍的注册已被驳回，不能加入")])
        return unit

    async def register_volunteer(self, profile: VolunteerProfile, *, unit_id: str | None, scope: Scope) -> Doc:
        """A unit admin registers a member (active at once), or a volunteer registers and asks to join
        (pending when the unit approves its members)."""
        if scope.identity.role == "volunteer" and scope.identity.volunteer_id:
            raise ForbiddenError("您已注册，不能重复注册")
        unit = await self._target_unit(unit_id, scope)
        id_hash = self.cipher.hash(profile.id_number)
        holder = await self.holder(id_hash)
        if holder is not None:
            raise await self.duplicate_person(holder, scope)
        (number,) = await self.next_platform_numbers(1)
        now = clock.now()
        membership = request_membership(
            [], unit["_id"], requires_approval=not scope.admin and bool(unit.get("member_approval")), at=now
        )
        doc = self.volunteer_doc(
            number, profile, now, scope, [(membership, [*unit.get("ancestors", []), unit["_id"]])], id_hash=id_hash
        )
        await self.remember_vocabulary([doc])
        try:  # the unique id_hash index keeps one person once, whichever replica registers them
            await self.volunteers.create(doc, self.registration_events(doc))
        except DuplicateKeyError:
            raise await self.duplicate_person(await self.holder(id_hash) or "", scope) from None
        return strip(doc)

    def volunteer_doc(
        self,
        number: str,
        profile: VolunteerProfile,
        now: datetime,
        scope: Scope,
        memberships: Sequence[tuple[Membership, Sequence[str]]] | Mapping[str, Doc],
        *,
        id_hash: str,
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
            "name_terms": search_fields({"name": profile.name})["name_terms"],
            "id_hash": id_hash,
            "id_cipher": self.cipher.encrypt(profile.id_number),
            "id_masked": self.cipher.mask(profile.id_number),
            "status": "active",
            "memberships": entries,
            **derived_membership_fields(entries),
            "account": scope.identity.subject if scope.identity.role == "volunteer" else None,
            "registered_at": now,
            "registered_by": scope.identity.subject,
            "updated_at": now,
            "version": 1,
        }

    @staticmethod
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

    @staticmethod
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

    async def get_volunteer(self, volunteer_id: str, scope: Scope) -> Doc:
        return await self._visible_volunteer(volunteer_id, scope)

    async def update_volunteer(self, volunteer_id: str, changes: Mapping[str, Any], scope: Scope) -> Doc:
        """Profile changes (not the ID-card number nor the gender it codes), checked like a registration."""
        unchanged: list[Doc] = []

        async def decide(doc: Doc | None) -> Write[Doc] | None:
            if doc is None:
                raise NotFoundError("未找到该志愿者")
            if not scope.sees_volunteer(doc):
                raise ForbiddenError("无权修改该志愿者的信息")
            merged = {k: doc.get(k) for k in VOLUNTEER_PROFILE_FIELDS}
            merged.update({k: v for k, v in changes.items() if k in VOLUNTEER_PROFILE_FIELDS})
            draft = VolunteerDraft.model_validate(
                {
                    **{k: v for k, v in merged.items() if v is not None},
                    "id_number": self.cipher.decrypt(doc["id_cipher"]),
                }
            )
            profile = validate_volunteer(draft)
            fields = volunteer_fields(profile)
            sets = {k: v for k, v in fields.items() if doc.get(k) != v}
            if not sets:
                unchanged.append(strip(doc))
                return None
            if "title" in sets or "professional_field" in sets:
                await self.remember_vocabulary([fields])
            now = clock.now()
            derived = search_fields(fields) if "name" in sets else {}
            new = {**doc, **sets, **derived, "version": doc["version"] + 1, "updated_at": now}
            event = volunteer_event(new, VolunteerUpdated, changed=sorted(sets))
            return Write({"$set": {**sets, **derived, "updated_at": now}}, [event], strip(new))

        result = await self.volunteers.change(volunteer_id, decide)
        return result if result is not None else unchanged[-1]

    async def join(self, volunteer_id: str, unit_id: str, scope: Scope) -> Doc:
        """The volunteer asks to join (pending when the unit approves its members) or an admin of the unit
        adds them (active at once)."""
        unit = await self.unit(unit_id)
        if unit["status"] == UnitStatus.REJECTED.value:
            raise ValidationFailedError([FieldError("unit_id", "该队伍的注册已被驳回，不能加入")])

        def decide(doc: Doc | None) -> Write[Doc]:
            if doc is None:
                raise NotFoundError("未找到该志愿者")
            if scope.admin:
                # an admin adds only a person already in its scope (a member of its unit or of one below): anyone
                # else asks to join as themselves, so nobody gains a stranger's record by adding them
                if not scope.manages_unit(unit) or not scope.sees_volunteer(doc):
                    raise refuse("该志愿者")
            elif not scope.sees_volunteer(doc):
                raise ForbiddenError("只能为本人申请加入队伍")
            now = clock.now()
            m = request_membership(
                memberships_of(doc),
                unit_id,
                requires_approval=not scope.admin and bool(unit.get("member_approval")),
                at=now,
            )
            return membership_write(doc, m, [*unit.get("ancestors", []), unit_id], now)

        return await self._change_volunteer(volunteer_id, decide)

    async def decide_membership(
        self, volunteer_id: str, unit_id: str, *, approve: bool, reason: str | None, scope: Scope
    ) -> Doc:
        unit = await self.unit(unit_id)
        if not scope.admin or not scope.manages_unit(unit):
            raise refuse()

        def decide(doc: Doc | None) -> Write[Doc]:
            if doc is None:
                raise NotFoundError("未找到该志愿者")
            current = next((m for m in memberships_of(doc) if m.unit_id == unit_id), None)
            if current is None:
                raise NotFoundError("该志愿者没有申请加入此队伍")
            now = clock.now()
            m = (
                approve_membership(current, at=now)
                if approve
                else reject_membership(current, reason=reason or "", at=now)
            )
            return membership_write(doc, m, doc["memberships"][unit_id].get("path", [unit_id]), now)

        return await self._change_volunteer(volunteer_id, decide)

    async def leave(self, volunteer_id: str, unit_id: str, reason: str | None, scope: Scope) -> Doc:
        async def decide(doc: Doc | None) -> Write[Doc]:
            if doc is None:
                raise NotFoundError("未找到该志愿者")
            current = next((m for m in memberships_of(doc) if m.unit_id == unit_id), None)
            if current is None:
                raise NotFoundError("该志愿者不在此队伍中")
            if scope.admin:
                unit = await self.unit(unit_id)
                if not scope.manages_unit(unit):
                    raise refuse()
            elif not scope.sees_volunteer(doc):
                raise ForbiddenError("只能为本人办理退出")
            now = clock.now()
            m = leave_unit(current, at=now, reason=reason)
            return membership_write(doc, m, doc["memberships"][unit_id].get("path", [unit_id]), now, was=current)

        return await self._change_volunteer(volunteer_id, decide)

    async def _change_volunteer(self, volunteer_id: str, decide: Any) -> Doc:
        def visible(doc: Doc | None) -> Any:  # a volunteer of an import not yet committed does not exist yet
            return decide(None if doc is not None and PENDING_IMPORT in doc else doc)

        result: Doc | None = await self.volunteers.change(volunteer_id, visible)
        assert result is not None  # these decisions always write
        return result

    async def search_volunteers(
        self,
        scope: Scope,
        *,
        unit_id: str | None = None,
        name: str | None = None,
        professional_field: str | None = None,
        skill: str | None = None,
        title: str | None = None,
        skip: int = 0,
        limit: int = 50,
    ) -> Page:
        """One page of the matching volunteers in platform-number order, and how many match: indexed queries
        (see :mod:`services.registry.search`)."""
        if not scope.admin:
            raise ForbiddenError("只有管理员可以查询志愿者名单")
        if unit_id is not None:
            unit = await self.unit(unit_id)
            if not scope.sees_unit(unit):
                raise refuse()
        query = VolunteerQuery.of(
            unit=unit_id,
            scope_unit=None if scope.province else str(scope.identity.unit_id),
            name=name,
            professional_field=professional_field,
            title=title,
            skill=skill,
        )
        vocabulary = {
            field: [str(d["value"]) async for d in self.db[VOCABULARY].find(vocabulary_filter(field, text))]
            for field, text in query.vocabulary_asks.items()
        }
        found = {**query.filter(vocabulary), **NOT_PENDING}
        return await self._page(VOLUNTEERS, found, skip, limit, sort=[("_id", 1)])


def membership_write(
    doc: Mapping[str, Any], m: Membership, path: Sequence[str], now: datetime, *, was: Membership | None = None
) -> Write[Doc]:
    """The write of a membership's new state, with the derived unit lists and the event it announces."""
    memberships = {**(doc.get("memberships") or {}), m.unit_id: membership_entry(m, path)}
    derived = derived_membership_fields(memberships)
    version = doc["version"] + 1
    sets = {f"memberships.{m.unit_id}": memberships[m.unit_id], **derived, "updated_at": now}
    new = {**doc, "memberships": memberships, **derived, "version": version, "updated_at": now}
    events: list[Envelope[Any]] = []
    if m.status is MembershipStatus.ACTIVE:
        events.append(
            envelope(
                VolunteerJoinedUnit(volunteer_id=doc["_id"], unit_id=m.unit_id, joined_at=now, version=version),
                doc["_id"],
            )
        )
    elif m.status is MembershipStatus.LEFT and was is not None and was.status is MembershipStatus.ACTIVE:
        events.append(
            envelope(
                VolunteerLeftUnit(
                    volunteer_id=doc["_id"], unit_id=m.unit_id, left_at=now, reason=m.reason, version=version
                ),
                doc["_id"],
            )
        )
    return Write({"$set": sets}, events, strip(new))


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
