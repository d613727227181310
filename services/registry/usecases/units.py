"""Use cases of units: registration (the province's active at once, a lower admin's pending), edits, the parent side's
approval or rejection, listings, a unit's subtree and path, and the notice's standard names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from services.registry.domain.codes import UnitStatus
from services.registry.domain.contact import ContactDraft, ContactPerson, validate_contact
from services.registry.domain.errors import (
    FieldError,
    ForbiddenError,
    InvalidParentError,
    NotFoundError,
    ValidationFailedError,
    refuse,
)
from services.registry.domain.leaders import Leader, LeaderDraft, check_leaders
from services.registry.domain.records import (
    CORPS_KEY,
    new_unit_doc,
    profile_fields,
    strip,
    unit_event,
    unit_profile,
)
from services.registry.domain.scope import Scope
from services.registry.domain.units import (
    CORPS_NAME,
    UnitDraft,
    UnitProfile,
    check_name,
    check_parent,
    detachment_city,
    find_city,
    suggest_name,
    transition_unit,
    validate_unit,
)
from services.registry.usecases.ports import Doc, Page, RegistryStore, UnitDecision, UnitFilter
from shared import clock
from shared.aggregates import Write
from shared.contracts.events import UnitRegistered, UnitUpdated
from shared.vocabulary import UnitKind

UNIT_EDITS = ("name", "leaders", "credit_code", "phone", "address")


def checked_contact(draft: ContactDraft) -> ContactPerson:
    """The contact person of a unit; its field errors named under ``contact.``."""
    try:
        return validate_contact(draft)
    except ValidationFailedError as failed:
        raise ValidationFailedError([FieldError("contact." + e.field, e.message) for e in failed.errors]) from None


def _collect(errors: list[FieldError], check: Any, *args: Any) -> Any:
    """Run one check, keeping its field errors with the others (a form reports all its problems at once)."""
    try:
        return check(*args)
    except ValidationFailedError as failed:
        errors.extend(failed.errors)
        return None


@dataclass(frozen=True)
class UnitRegistration:
    """What a registration asks: the unit's data (its name suggested from ``base`` when not given)."""

    draft: UnitDraft
    base: str | None = None
    parent_id: str | None = None
    contact: ContactDraft | None = None
    member_approval: bool = False


@dataclass(frozen=True)
class UnitEdit:
    """The fields an edit sends (only those in ``sent`` change); leaders and contact as drafts."""

    sent: frozenset[str]
    name: str | None = None
    leaders: Sequence[LeaderDraft] | None = None
    contact: ContactDraft | None = None
    credit_code: str | None = None
    phone: str | None = None
    address: str | None = None
    member_approval: bool | None = None


class Units:
    def __init__(self, store: RegistryStore) -> None:
        self.store = store

    async def unit(self, unit_id: str) -> Doc:
        doc = await self.store.unit(unit_id)
        if doc is None:
            raise NotFoundError("未找到该队伍")
        return doc

    async def _parent_name(self, parent_id: str | None) -> str | None:
        return (await self.unit(parent_id))["name"] if parent_id else None

    async def suggest_name(self, kind: str, base: str, parent_id: str | None) -> tuple[str, bool]:
        """The standard name of a unit, and whether it is free."""
        member = UnitKind.lookup(kind)
        if member is None:
            raise ValidationFailedError([FieldError("kind", f"组织类型“{kind}”不在可选范围内")])
        if member is UnitKind.CITY_DETACHMENT and find_city(base) is None:
            message = f"“{base}”不是河北省的设区市、定州市、辛集市或雄安新区，市级支队名称应为“××市科技志愿者支队”"
            raise ValidationFailedError([FieldError("base", message)])
        name = suggest_name(member, base, parent_name=await self._parent_name(parent_id))
        return name, await self.store.unit_id_by_name(name) is None

    async def register(self, asked: UnitRegistration, scope: Scope) -> Doc:
        """Check the data whole, then register: active when the province registers it, else pending."""
        draft = asked.draft
        kind = UnitKind.lookup(draft.kind or "")
        if not draft.name and kind is not None and (asked.base or kind is UnitKind.PROVINCE_CORPS):
            parent_name = await self._parent_name(asked.parent_id)
            draft = draft.model_copy(update={"name": suggest_name(kind, asked.base or "", parent_name=parent_name)})
        errors: list[FieldError] = []
        profile: UnitProfile | None = _collect(errors, validate_unit, draft)
        contact = None if asked.contact is None else _collect(errors, checked_contact, asked.contact)
        if errors or profile is None:
            raise ValidationFailedError(errors)
        return await self._register(profile, asked.parent_id, contact, asked.member_approval, scope)

    async def _register(
        self, profile: UnitProfile, parent_id: str | None, contact: ContactPerson | None, approval: bool, scope: Scope
    ) -> Doc:
        if not scope.admin:
            raise ForbiddenError("只有管理员可以注册队伍")
        check_leaders(profile.kind, profile.leaders)  # role errors; gaps are information
        parent = await self.unit(parent_id) if parent_id else None
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
            corps_exists=corps and await self.store.corps_exists(),
        )
        check_place(profile, parent)
        if profile.kind is UnitKind.CITY_DETACHMENT and profile.city is None:  # 石家庄市科技志愿者支队 is 石家庄's
            profile = profile.model_copy(update={"city": detachment_city(profile.name)})
        doc = new_unit_doc(profile, parent, contact, approval, scope, clock.now())
        name_checked(UnitKind(doc["kind"]), doc["name"], doc.get("city"), parent)
        await self.store.create_units([(doc, [unit_event(doc, UnitRegistered)])])
        return strip(doc)

    async def edit(self, unit_id: str, edit: UnitEdit, scope: Scope) -> Doc:
        """Changed fields, checked like a registration (a new name against the notice's pattern too); UnitUpdated
        lists what changed."""
        doc = await self.unit(unit_id)
        current = unit_profile(doc)
        sent = edit.sent
        leaders = (
            list(edit.leaders)
            if edit.leaders is not None
            else [LeaderDraft(name=x.name, role=x.role.value, mobile=x.mobile) for x in current.leaders]
        )
        draft = UnitDraft(
            name=edit.name if "name" in sent else current.name,
            kind=current.kind.value,
            city=current.city,
            credit_code=edit.credit_code if "credit_code" in sent else current.credit_code,
            phone=edit.phone if "phone" in sent else current.phone,
            address=edit.address if "address" in sent else current.address,
            founded_on=current.founded_on,
            declared_members=current.declared_members,
            leaders=leaders,
        )
        errors: list[FieldError] = []
        checked = _collect(errors, validate_unit, draft)
        fields: dict[str, Any] = profile_fields(checked) if checked is not None else {}
        changes: dict[str, Any] = {k: fields.get(k) for k in UNIT_EDITS if k in sent}
        if edit.contact is not None:
            contact = _collect(errors, checked_contact, edit.contact)
            if contact is not None:
                changes["contact"] = contact.model_dump()
        if edit.member_approval is not None:
            changes["member_approval"] = edit.member_approval
        if errors:
            raise ValidationFailedError(errors)
        if "name" in changes and changes["name"] != doc["name"]:
            parent = await self.store.unit(doc["parent_id"]) if doc.get("parent_id") else None
            name_checked(current.kind, changes["name"], doc.get("city"), parent)
        return await self.change(unit_id, changes, scope)

    async def change(self, unit_id: str, changes: Mapping[str, Any], scope: Scope) -> Doc:
        """Apply changed fields (already checked); a new name moves the unit's name reservation in the same
        transaction."""
        unchanged: list[Doc] = []

        async def decide(doc: Doc | None) -> UnitDecision | None:
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

        result = await self.store.change_unit(unit_id, decide)
        return result if result is not None else unchanged[-1]

    async def decide(self, unit_id: str, *, approve: bool, reason: str | None, scope: Scope) -> Doc:
        """The parent side approves or rejects a pending unit: the province, or an admin of a unit above the one that
        registered it (never the registrar's own unit). A rejection frees its name (and the corps key)."""

        async def decide(doc: Doc | None) -> UnitDecision:
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

        result = await self.store.change_unit(unit_id, decide)
        assert result is not None
        return result

    async def get(self, unit_id: str, scope: Scope) -> Doc:
        """A unit in the caller's scope; a volunteer may read any active unit (to join it)."""
        doc = await self.unit(unit_id)
        volunteer_reads = scope.identity.role == "volunteer" and doc["status"] == UnitStatus.ACTIVE.value
        if not scope.sees_unit(doc) and not volunteer_reads:
            raise refuse()
        return doc

    async def listing(self, scope: Scope, asked: Mapping[str, str | None], skip: int, limit: int) -> Page:
        """Units by kind, city, status, parent and exact name (codes or Chinese), in the caller's scope."""
        kind, city, status = asked.get("kind"), asked.get("city"), asked.get("status")
        kind_code = city_code = status_code = None
        if kind is not None:
            member = UnitKind.lookup(kind)
            if member is None:
                raise ValidationFailedError([FieldError("kind", f"组织类型“{kind}”不在可选范围内")])
            kind_code = member.value
        if city is not None:
            found = find_city(city)
            if found is None:
                raise ValidationFailedError([FieldError("city", f"地区“{city}”不是河北省的市级地区")])
            city_code = found.code
        if status is not None:
            st = UnitStatus.lookup(status)
            if st is None:
                raise ValidationFailedError([FieldError("status", f"状态“{status}”不在可选范围内")])
            status_code = st.value
        query = UnitFilter(
            kind=kind_code,
            city=city_code,
            status=status_code,
            parent_id=asked.get("parent_id"),
            name=asked.get("name"),
        )
        return await self.store.list_units(_within(scope, query), skip, limit)

    async def subtree(self, unit_id: str, scope: Scope, skip: int, limit: int) -> Page:
        root = await self.unit(unit_id)
        if not scope.sees_unit(root):
            raise refuse()
        return await self.store.list_units(_within(scope, UnitFilter(below=unit_id)), skip, limit)

    async def path(self, unit_id: str, scope: Scope) -> list[Doc]:
        """The unit's ancestors from the corps down, then itself."""
        doc = await self.unit(unit_id)
        if not scope.sees_unit(doc):
            raise refuse()
        return [await self.unit(a) for a in doc.get("ancestors", [])] + [doc]


def check_place(profile: UnitProfile, parent: Mapping[str, Any] | None) -> None:
    """按属地管理原则: a unit that names its city joins a parent of the same city (when the parent has one)."""
    city = parent.get("city") if parent else None
    if city and profile.city and profile.city != city:
        own, theirs = find_city(profile.city), find_city(city)
        assert own is not None and theirs is not None
        raise InvalidParentError(f"按属地管理原则，{own.name}的队伍不能加入{theirs.name}的队伍")


def name_checked(kind: UnitKind, name: str, city: str | None, parent: Mapping[str, Any] | None) -> None:
    """Refuse a name off the notice's pattern for its kind (and place in the tree), with a suggestion."""
    parent_kind = UnitKind(parent["kind"]) if parent else None
    check_name(kind, name, city=city, parent_name=parent["name"] if parent else None, parent_kind=parent_kind)


def _within(scope: Scope, query: UnitFilter) -> UnitFilter:
    """A listing limited to what the caller reaches: everything (province), a unit admin's subtree, else nothing."""
    if scope.province:
        return query
    own = scope.own_unit
    if own is None:
        return replace(query, nothing=True)
    return replace(query, within=own)
