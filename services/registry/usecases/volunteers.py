"""Use cases of volunteers: registration (one person once), profile edits, memberships (join, approve or reject,
leave: at most five units) and searches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.registry.domain.codes import MembershipStatus, UnitStatus
from services.registry.domain.errors import (
    DuplicatePersonError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    ValidationFailedError,
    refuse,
)
from services.registry.domain.memberships import (
    Membership,
    approve_membership,
    leave_unit,
    reject_membership,
    request_membership,
)
from services.registry.domain.records import (
    VOLUNTEER_PROFILE_FIELDS,
    derived_membership_fields,
    envelope,
    membership_entry,
    memberships_of,
    registration_events,
    search_fields,
    strip,
    volunteer_doc,
    volunteer_event,
    volunteer_fields,
)
from services.registry.domain.scope import Scope
from services.registry.domain.volunteers import VolunteerDraft, VolunteerProfile, validate_volunteer
from services.registry.usecases.ports import (
    Doc,
    IdCipher,
    IdLookupLedger,
    Page,
    PersonTaken,
    RegistryStore,
    VolunteerFilter,
)
from shared import clock
from shared.aggregates import Write
from shared.contracts.envelope import Envelope
from shared.contracts.events import VolunteerJoinedUnit, VolunteerLeftUnit, VolunteerUpdated

OPEN = (MembershipStatus.ACTIVE.value, MembershipStatus.PENDING.value)


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
        joined = VolunteerJoinedUnit(volunteer_id=doc["_id"], unit_id=m.unit_id, joined_at=now, version=version)
        events.append(envelope(joined, doc["_id"]))
    elif m.status is MembershipStatus.LEFT and was is not None and was.status is MembershipStatus.ACTIVE:
        left = VolunteerLeftUnit(
            volunteer_id=doc["_id"], unit_id=m.unit_id, left_at=now, reason=m.reason, version=version
        )
        events.append(envelope(left, doc["_id"]))
    return Write({"$set": sets}, events, strip(new))


async def duplicate_person(store: RegistryStore, existing_id: str, scope: Scope) -> DuplicatePersonError:
    """The refusal for a second registration: its platform number and the units the caller may see when the caller
    may see the person, else only that it is registered in another unit (no number, no unit)."""
    doc = await store.holder_record(existing_id)
    if doc is None or not scope.admin or not scope.sees_volunteer(doc):
        return DuplicatePersonError(elsewhere=True)
    open_units = [uid for uid, m in (doc.get("memberships") or {}).items() if m["status"] in OPEN]
    names = [u["name"] for u in await store.units_by_id(open_units) if scope.sees_unit(u)]
    return DuplicatePersonError(platform_number=doc.get("platform_number"), unit_names=names)


class Volunteers:
    def __init__(self, store: RegistryStore, cipher: IdCipher, lookups: IdLookupLedger) -> None:
        self.store = store
        self.cipher = cipher
        self.lookups = lookups

    async def _unit(self, unit_id: str) -> Doc:
        doc = await self.store.unit(unit_id)
        if doc is None:
            raise NotFoundError("未找到该队伍")
        return doc

    async def _target_unit(self, unit_id: str | None, scope: Scope) -> Doc:
        if unit_id is None:
            if scope.identity.role == "unit_admin" and scope.identity.unit_id:
                unit_id = scope.identity.unit_id
            else:
                raise ValidationFailedError([FieldError("unit_id", "请选择要加入的队伍")])
        unit = await self._unit(unit_id)
        if scope.admin and not scope.manages_unit(unit):
            raise refuse()
        if unit["status"] == UnitStatus.REJECTED.value:
            raise ValidationFailedError([FieldError("unit_id", "该队伍的注册已被驳回，不能加入")])
        return unit

    async def register(self, draft: VolunteerDraft, unit_id: str | None, scope: Scope) -> Doc:
        """A unit admin registers a member (active at once), or a volunteer registers and asks to join (pending
        when the unit approves its members). A person registered already is refused; when outside the caller's
        scope, that answer is counted against the caller's day and recorded."""
        profile = validate_volunteer(draft)
        try:
            return await self._register(profile, unit_id, scope)
        except DuplicatePersonError as refused:
            if refused.elsewhere:
                await self.lookups.charge(scope.identity, 1, purpose="register", unit_id=unit_id)
            raise

    async def _register(self, profile: VolunteerProfile, unit_id: str | None, scope: Scope) -> Doc:
        if scope.identity.role == "volunteer" and scope.identity.volunteer_id:
            raise ForbiddenError("您已注册，不能重复注册")
        unit = await self._target_unit(unit_id, scope)
        id_hash = self.cipher.hash(profile.id_number)
        holder = await self.store.holder(id_hash)
        if holder is not None:
            raise await duplicate_person(self.store, holder, scope)
        (number,) = await self.store.next_platform_numbers(1)
        now = clock.now()
        approval = not scope.admin and bool(unit.get("member_approval"))
        membership = request_membership([], unit["_id"], requires_approval=approval, at=now)
        path = [*unit.get("ancestors", []), unit["_id"]]
        doc = volunteer_doc(
            number,
            profile,
            now,
            scope,
            [(membership, path)],
            id_hash=id_hash,
            id_cipher=self.cipher.encrypt(profile.id_number),
            id_masked=self.cipher.mask(profile.id_number),
        )
        await self.store.remember_vocabulary([doc])
        try:
            await self.store.create_volunteer(doc, registration_events(doc))
        except PersonTaken:  # registered meanwhile, by another request or replica
            raise await duplicate_person(self.store, await self.store.holder(id_hash) or "", scope) from None
        return strip(doc)

    async def get(self, volunteer_id: str, scope: Scope) -> Doc:
        doc = await self.store.volunteer(volunteer_id)
        if doc is None:
            raise NotFoundError("未找到该志愿者")
        if not scope.sees_volunteer(doc):
            raise ForbiddenError("无权访问该志愿者的信息")
        return doc

    async def edit(self, volunteer_id: str, changes: Mapping[str, Any], scope: Scope) -> Doc:
        """Profile changes (not the ID-card number nor the gender it codes), checked like a registration."""
        unchanged: list[Doc] = []

        async def decide(doc: Doc | None) -> Write[Doc] | None:
            if doc is None:
                raise NotFoundError("未找到该志愿者")
            if not scope.sees_volunteer(doc):
                raise ForbiddenError("无权修改该志愿者的信息")
            merged = {k: doc.get(k) for k in VOLUNTEER_PROFILE_FIELDS}
            merged.update({k: v for k, v in changes.items() if k in VOLUNTEER_PROFILE_FIELDS})
            given = {k: v for k, v in merged.items() if v is not None}
            draft = VolunteerDraft.model_validate({**given, "id_number": self.cipher.decrypt(doc["id_cipher"])})
            fields = volunteer_fields(validate_volunteer(draft))
            sets = {k: v for k, v in fields.items() if doc.get(k) != v}
            if not sets:
                unchanged.append(strip(doc))
                return None
            if "title" in sets or "professional_field" in sets:
                await self.store.remember_vocabulary([fields])
            now = clock.now()
            derived = search_fields(fields) if "name" in sets else {}
            new = {**doc, **sets, **derived, "version": doc["version"] + 1, "updated_at": now}
            event = volunteer_event(new, VolunteerUpdated, changed=sorted(sets))
            return Write({"$set": {**sets, **derived, "updated_at": now}}, [event], strip(new))

        result = await self.store.change_volunteer(volunteer_id, decide)
        return result if result is not None else unchanged[-1]

    async def join(self, volunteer_id: str, unit_id: str, scope: Scope) -> Doc:
        """The volunteer asks to join (pending when the unit approves its members) or an admin of the unit adds
        them (active at once)."""
        unit = await self._unit(unit_id)
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
            approval = not scope.admin and bool(unit.get("member_approval"))
            m = request_membership(memberships_of(doc), unit_id, requires_approval=approval, at=now)
            return membership_write(doc, m, [*unit.get("ancestors", []), unit_id], now)

        return await self._change(volunteer_id, decide)

    async def decide_membership(
        self, volunteer_id: str, unit_id: str, *, approve: bool, reason: str | None, scope: Scope
    ) -> Doc:
        """An admin of the unit approves or rejects a pending request to join."""
        unit = await self._unit(unit_id)
        if not scope.admin or not scope.manages_unit(unit):
            raise refuse()

        def decide(doc: Doc | None) -> Write[Doc]:
            if doc is None:
                raise NotFoundError("未找到该志愿者")
            current = next((m for m in memberships_of(doc) if m.unit_id == unit_id), None)
            if current is None:
                raise NotFoundError("该志愿者没有申请加入此队伍")
            now = clock.now()
            if approve:
                m = approve_membership(current, at=now)
            else:
                m = reject_membership(current, reason=reason or "", at=now)
            return membership_write(doc, m, doc["memberships"][unit_id].get("path", [unit_id]), now)

        return await self._change(volunteer_id, decide)

    async def leave(self, volunteer_id: str, unit_id: str, reason: str | None, scope: Scope) -> Doc:
        """The volunteer (or an admin of the unit) ends a membership or withdraws a request; the record stays."""

        async def decide(doc: Doc | None) -> Write[Doc]:
            if doc is None:
                raise NotFoundError("未找到该志愿者")
            current = next((m for m in memberships_of(doc) if m.unit_id == unit_id), None)
            if current is None:
                raise NotFoundError("该志愿者不在此队伍中")
            if scope.admin:
                if not scope.manages_unit(await self._unit(unit_id)):
                    raise refuse()
            elif not scope.sees_volunteer(doc):
                raise ForbiddenError("只能为本人办理退出")
            now = clock.now()
            m = leave_unit(current, at=now, reason=reason)
            path = doc["memberships"][unit_id].get("path", [unit_id])
            return membership_write(doc, m, path, now, was=current)

        return await self._change(volunteer_id, decide)

    async def _change(self, volunteer_id: str, decide: Any) -> Doc:
        result = await self.store.change_volunteer(volunteer_id, decide)
        assert result is not None  # these decisions always write
        return result

    async def search(self, scope: Scope, asked: Mapping[str, str | None], skip: int, limit: int) -> Page:
        """One page of the matching volunteers in platform-number order, and how many match."""
        if not scope.admin:
            raise ForbiddenError("只有管理员可以查询志愿者名单")
        unit_id = asked.get("unit_id")
        if unit_id is not None and not scope.sees_unit(await self._unit(unit_id)):
            raise refuse()
        query = VolunteerFilter(
            unit=unit_id,
            within=None if scope.province else str(scope.identity.unit_id),
            name=asked.get("name"),
            professional_field=asked.get("professional_field"),
            title=asked.get("title"),
            skill=asked.get("skill"),
        )
        return await self.store.search_volunteers(query, skip, limit)
