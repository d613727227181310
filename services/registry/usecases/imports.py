"""Use cases of the collective-registration spreadsheets (附件1 organisations, 附件2 volunteers, 附件3 contacts):
an upload checked whole (every row, against the file and the stored data) and imported all or nothing, and the rows
of an export that re-imports unchanged. A row equal to what is stored already is *unchanged* (so a re-upload of the
same file imports nothing new); a row that collides with different stored data is an error."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.registry.domain.codes import MembershipStatus, UnitStatus
from services.registry.domain.errors import (
    CorpsExistsError,
    DuplicateNameError,
    DuplicatePersonError,
    ForbiddenError,
    ImportConflictError,
    InvalidParentError,
    NotFoundError,
    RowsInvalidError,
)
from services.registry.domain.fields import mask_id_number
from services.registry.domain.imports import (
    ContactRow,
    FormKind,
    OrganisationRow,
    ParsedForm,
    Plan,
    RowError,
    VolunteerRow,
)
from services.registry.domain.memberships import Membership, request_membership
from services.registry.domain.records import (
    VOLUNTEER_PROFILE_FIELDS,
    import_event,
    membership_entry,
    new_unit_doc,
    profile_fields,
    unit_event,
    unit_profile,
    volunteer_doc,
    volunteer_fields,
)
from services.registry.domain.scope import Scope
from services.registry.domain.units import CORPS_NAME, check_parent, name_refusal, name_suggestion
from services.registry.domain.volunteers import VolunteerProfile
from services.registry.usecases.ports import Doc, IdCipher, IdLookupLedger, RegistryStore, VolunteerImports
from services.registry.usecases.units import Units, check_place
from services.registry.usecases.volunteers import duplicate_person
from shared import clock
from shared.contracts.envelope import Envelope
from shared.contracts.events import UnitRegistered
from shared.vocabulary import UnitKind

ELSEWHERE = DuplicatePersonError(elsewhere=True)
Counter = Callable[[int], None]  # hears progress: rows checked so far, or records written by one more chunk
CHECK_TICK = 1_000
OPEN = (MembershipStatus.ACTIVE.value, MembershipStatus.PENDING.value)


@dataclass
class ImportOutcome:
    """What an upload did (or, in a dry run, would do)."""

    form: FormKind
    dry_run: bool
    total_rows: int
    created: int
    updated: int
    unchanged: int
    errors: list[RowError] = field(default_factory=list)


class Imports:
    def __init__(
        self,
        store: RegistryStore,
        units: Units,
        cipher: IdCipher,
        lookups: IdLookupLedger,
        bulk: VolunteerImports,
    ) -> None:
        self.store = store
        self.units = units
        self.cipher = cipher
        self.lookups = lookups
        self.bulk = bulk

    def planner(self, scope: Scope, checked: Counter | None = None) -> Planner:
        return Planner(self.store, self.cipher, scope, checked)

    async def upload(
        self, parsed: ParsedForm[Any], scope: Scope, *, dry_run: bool, unit_id: str | None
    ) -> ImportOutcome:
        """Plan the upload against the stored data; unless a dry run, import it whole (RowsInvalidError when any
        row is wrong). Answers about ID numbers registered outside the caller's scope are counted and recorded."""
        outcome, plan = await self.check(parsed, scope, dry_run=dry_run, unit_id=unit_id)
        if dry_run:
            return outcome
        if outcome.errors:
            errors = outcome.errors
            rows = len({e.row for e in errors})
            raise RowsInvalidError(
                f"文件中有{rows}行共{len(errors)}处错误，整个文件未导入，请改正后重新上传",
                [{"sheet": e.sheet, "row": e.row, "column": e.column, "message": e.message} for e in errors],
            )
        await self.commit(parsed.form, plan, scope)
        return outcome

    async def check(
        self,
        parsed: ParsedForm[Any],
        scope: Scope,
        *,
        dry_run: bool,
        unit_id: str | None,
        checked: Counter | None = None,
    ) -> tuple[ImportOutcome, Plan]:
        """What the upload would do and every problem of it, against the stored data (nothing is written but the
        record of answers about ID numbers registered elsewhere); ``checked`` hears the rows checked so far."""
        planner = self.planner(scope, checked)
        if parsed.form is FormKind.ORGANISATIONS:
            plan = await planner.organisations(parsed)
        elif parsed.form is FormKind.VOLUNTEERS:
            plan = await planner.volunteers(parsed, unit_id)
        else:
            plan = await planner.contacts(parsed)
        purpose = "import_dry_run" if dry_run else "import"
        await self.lookups.charge(scope.identity, plan.elsewhere, purpose=purpose, unit_id=unit_id)
        errors = sorted([*parsed.errors, *plan.errors], key=lambda e: (e.row, e.column or ""))
        outcome = ImportOutcome(
            form=parsed.form,
            dry_run=dry_run,
            total_rows=parsed.total_rows,
            created=len(plan.created),
            updated=len(plan.updated),
            unchanged=plan.unchanged,
            errors=errors,
        )
        if checked is not None:
            checked(parsed.total_rows)
        return outcome, plan

    async def commit(
        self,
        form: FormKind,
        plan: Plan,
        scope: Scope,
        *,
        import_id: str | None = None,
        stored: Counter | None = None,
    ) -> list[Any]:
        """Write what the plan says, all or nothing; the ids of the volunteers written (a 附件2 import, named
        ``import_id`` when given; ``stored`` hears each chunk written)."""
        written: list[Any] = []
        if form is FormKind.ORGANISATIONS:
            await self._commit_units(plan.created)
        elif form is FormKind.VOLUNTEERS:
            written = await self._commit_volunteers(plan.created, scope, import_id, stored)
        else:
            for unit_id, contact in plan.updated:
                await self.units.change(unit_id, {"contact": contact}, scope)
        if stored is not None and form is not FormKind.VOLUNTEERS:
            stored(len(plan.created) + len(plan.updated))
        return written

    async def _commit_units(self, docs: Sequence[Doc]) -> None:
        """Every unit of the file and its name reservations in one transaction: a name (or the corps) taken meanwhile
        leaves none written and announces nothing."""
        if not docs:
            return
        try:
            await self.store.create_units([(d, [unit_event(d, UnitRegistered)]) for d in docs])
        except (DuplicateNameError, CorpsExistsError):
            raise ImportConflictError("组织名称在导入过程中被其他操作占用，整个文件未导入，请重新上传") from None

    async def _commit_volunteers(
        self, created: Sequence[Any], scope: Scope, import_id: str | None, stored: Counter | None
    ) -> list[Any]:
        """One document and one ``VolunteerRegistered`` per person, all or nothing (see :class:`VolunteerImports`);
        the platform numbers are handed out as one block, the vocabulary written before the volunteers."""
        if not created:
            return []
        now = clock.now()
        numbers = await self.store.next_platform_numbers(len(created))
        await self.store.remember_vocabulary([volunteer_fields(c[0]) for c in created])
        entries: dict[str, dict[str, Doc]] = {}  # one stored membership entry per unit, shared (never mutated)
        cipher = self.cipher

        def build(chunk: Sequence[Any]) -> list[tuple[Doc, Envelope[Any]]]:
            built = []
            for (profile, membership, unit, id_hash), number in chunk:
                unit_entries = entries.get(unit["_id"])
                if unit_entries is None:
                    path = [*unit.get("ancestors", []), unit["_id"]]
                    unit_entries = entries.setdefault(unit["_id"], {unit["_id"]: membership_entry(membership, path)})
                doc = volunteer_doc(
                    number,
                    profile,
                    now,
                    scope,
                    unit_entries,
                    id_hash=id_hash,
                    id_cipher=cipher.encrypt(profile.id_number),
                    id_masked=cipher.mask(profile.id_number),
                )
                built.append((doc, import_event(doc)))
            return built

        jobs = list(zip(created, numbers, strict=True))
        return await self.bulk.insert_all(scope.identity.subject, jobs, build, import_id=import_id, stored=stored)

    async def export(
        self, form: FormKind, unit_id: str | None, scope: Scope, *, full_ids: bool, reason: str | None
    ) -> list[Any]:
        """The rows of an export of ``unit_id`` and everything below it (a unit admin's own unit when None, the
        province's whole tree for the province); ID numbers masked unless ``full_ids``. A 附件2 export is recorded
        before its rows are handed out (no record, no file)."""
        if unit_id is None and not scope.province:
            unit_id = scope.identity.unit_id
        units = await self._subtree_units(unit_id, scope)
        if form is FormKind.ORGANISATIONS:
            return await self._organisation_rows(units)
        if form is FormKind.VOLUNTEERS:
            rows = await self._volunteer_rows(units, unit_id, full_ids=full_ids)
            await self.lookups.record_export(
                scope.identity, form=form.value, unit_id=unit_id, full_ids=full_ids, reason=reason, rows=len(rows)
            )
            return rows
        return [
            ContactRow.model_validate({"unit_name": u["name"], "contact": u["contact"]})
            for u in units
            if u.get("contact")
        ]

    async def _subtree_units(self, unit_id: str | None, scope: Scope) -> list[Doc]:
        found: list[Doc] = []
        if unit_id is not None:
            root = await self.units.unit(unit_id)
            if not scope.sees_unit(root):
                raise ForbiddenError("无权导出该队伍的信息：只能导出本队伍及下级队伍")
            found.append(root)
        found.extend(await self.store.subtree(unit_id))
        live = [u for u in found if u["status"] != UnitStatus.REJECTED.value]
        return sorted(live, key=lambda u: len(u.get("ancestors", [])))

    async def _organisation_rows(self, units: Sequence[Doc]) -> list[OrganisationRow]:
        names = {u["_id"]: u["name"] for u in units}
        rows = []
        for u in units:
            parent = u.get("parent_id")
            parent_name = None
            if parent is not None:
                parent_name = names.get(parent) or (await self.units.unit(parent))["name"]
            rows.append(OrganisationRow(profile=unit_profile(u), parent_name=parent_name))
        return rows

    async def _volunteer_rows(self, units: Sequence[Doc], unit_id: str | None, *, full_ids: bool) -> list[VolunteerRow]:
        """The volunteers (members and applicants) of these units; their ID numbers masked unless ``full_ids`` (a
        province admin who gave a reason): then decrypted, and only then."""
        names = {u["_id"]: u["name"] for u in units}
        rows = []
        for doc in await self.store.volunteers_in(unit_id):
            memberships = (doc.get("memberships") or {}).items()
            open_units = [uid for uid, m in memberships if m["status"] in OPEN and uid in names]
            if not open_units:
                continue
            number = self.cipher.decrypt(doc["id_cipher"]) if full_ids else mask_id_number(doc["id_masked"])
            profile = VolunteerProfile.model_validate(
                {**{k: doc.get(k) for k in VOLUNTEER_PROFILE_FIELDS}, "id_number": number}
            )
            rows.append(VolunteerRow(profile=profile, unit_name=names[open_units[0]]))
        return rows


class Planner:
    """What one upload would do, checked against the stored data (nothing is written)."""

    def __init__(self, store: RegistryStore, cipher: IdCipher, scope: Scope, checked: Counter | None = None) -> None:
        self.store = store
        self.cipher = cipher
        self.scope = scope
        self.checked = checked
        self._units_by_name: dict[str, Doc | None] = {}

    async def stored_unit(self, name: str) -> Doc | None:
        """The live unit of this name (by its name reservation)."""
        if name not in self._units_by_name:
            uid = await self.store.unit_id_by_name(name)
            self._units_by_name[name] = await self.store.unit(uid) if uid else None
        return self._units_by_name[name]

    # -- 附件1 ------------------------------------------------------------------------------------------
    async def organisations(self, parsed: ParsedForm[OrganisationRow]) -> Plan:
        plan = Plan()
        in_file = {row.profile.name: (n, row) for n, row in zip(parsed.row_numbers, parsed.rows, strict=True)}
        new: dict[str, tuple[int, OrganisationRow]] = {}
        for number, row in zip(parsed.row_numbers, parsed.rows, strict=True):
            before = len(plan.errors)
            stored = await self.stored_unit(row.profile.name)
            parent_stored = await self.stored_unit(row.parent_name) if row.parent_name else None
            if stored is not None:
                if same_unit(stored, row, parent_stored):
                    plan.unchanged += 1
                else:
                    error = f"组织名称“{row.profile.name}”已被平台上的其他组织使用"
                    plan.errors.append(RowError(parsed.sheet, number, parsed.header_of("name"), error))
                continue
            problem = await self._organisation_problem(row, parent_stored, in_file) or name_problem(
                row, parent_stored, in_file
            )
            if problem is not None:
                column, message = problem
                plan.errors.append(RowError(parsed.sheet, number, parsed.header_of(column), message))
            if len(plan.errors) == before:
                new[row.profile.name] = (number, row)
        plan.created = await self._unit_docs(parsed, new, in_file, plan)
        return plan

    async def _organisation_problem(
        self, row: OrganisationRow, parent: Doc | None, in_file: Mapping[str, Any]
    ) -> tuple[str, str] | None:
        """Why a new organisation of the file may not be registered (column, message), or None."""
        if row.profile.kind is UnitKind.PROVINCE_CORPS:
            if not self.scope.province:
                return "kind", "只有省科协可以注册总队"
            if await self.store.corps_exists():
                return "kind", f"{CORPS_NAME}已存在，全省只设一个总队"
            return None
        if not row.parent_name or row.parent_name in in_file:
            return None
        if parent is None:
            return "parent_name", f"上级组织“{row.parent_name}”未在平台注册，本表中也没有无误的该组织行"
        if not self.scope.manages_unit(parent):
            return "parent_name", f"无权在“{row.parent_name}”下注册组织"
        if parent["status"] == UnitStatus.REJECTED.value:
            return "parent_name", f"上级组织“{row.parent_name}”的注册已被驳回"
        try:
            check_parent(row.profile.kind, UnitKind(parent["kind"]))
            check_place(row.profile, parent)
        except InvalidParentError as failed:
            return "parent_name", failed.message
        return None

    async def _unit_docs(
        self,
        parsed: ParsedForm[OrganisationRow],
        new: Mapping[str, tuple[int, OrganisationRow]],
        in_file: Mapping[str, Any],
        plan: Plan,
    ) -> list[Doc]:
        """The new units' documents; in-file parents resolved top-down (a parent row that failed, or a cycle, is an
        error of its children)."""
        docs: dict[str, Doc] = {}
        now = clock.now()
        header = parsed.header_of("parent_name")

        async def build(name: str, trail: tuple[str, ...]) -> Doc | None:
            if name in docs:
                return docs[name]
            number, row = new[name]
            parent: Doc | None = None
            if row.parent_name is not None and row.parent_name in new:
                if row.parent_name in trail:
                    plan.errors.append(RowError(parsed.sheet, number, header, "上级组织关系形成了循环"))
                    return None
                parent = await build(row.parent_name, (*trail, name))
                if parent is None:
                    return None
            elif row.parent_name:
                parent = await self.stored_unit(row.parent_name)
                if row.parent_name in in_file and parent is None:
                    error = f"上级组织“{row.parent_name}”所在行有错误"
                    plan.errors.append(RowError(parsed.sheet, number, header, error))
                    return None
            doc = new_unit_doc(row.profile, parent, None, False, self.scope, now)
            docs[name] = doc
            return doc

        for name in new:
            if name not in docs:
                await build(name, ())
        return list(docs.values())

    # -- 附件2 ------------------------------------------------------------------------------------------
    async def volunteers(self, parsed: ParsedForm[VolunteerRow], default_unit: str | None) -> Plan:
        """Every row checked against the stored data: the persons already registered are found by their keyed
        hashes; a row equal to what is stored is unchanged."""
        plan = Plan()
        rows = await self._volunteer_units(parsed, default_unit, plan)
        now = clock.now()
        memberships: dict[str, Membership] = {}
        for _, _, _, unit in rows:
            if unit["_id"] not in memberships:  # the same (immutable) membership for every row of a unit
                memberships[unit["_id"]] = request_membership([], unit["_id"], requires_approval=False, at=now)
        existing = await self.store.holders([h for _, _, h, _ in rows])
        header = parsed.header_of("id_number")
        for seen, (number, row, id_hash, unit) in enumerate(rows, start=1):
            if seen % CHECK_TICK == 0:
                await asyncio.sleep(0)  # a long file: the other requests of this replica get their turn
                if self.checked is not None:
                    self.checked(seen)
            holder = existing.get(id_hash)
            if holder is None:
                plan.created.append((row.profile, memberships[unit["_id"]], unit, id_hash))
                continue
            member = (holder.get("memberships") or {}).get(unit["_id"], {}).get("status") in OPEN
            fields = volunteer_fields(row.profile)
            if member and all(holder.get(k) == v for k, v in fields.items()):
                plan.unchanged += 1
            elif not self.scope.sees_volunteer(holder):  # that it exists, nothing more: no number, no unit
                plan.elsewhere += 1
                plan.errors.append(RowError(parsed.sheet, number, header, ELSEWHERE.message))
            else:
                refusal = await duplicate_person(self.store, holder["_id"], self.scope)
                plan.errors.append(RowError(parsed.sheet, number, header, refusal.message))
        return plan

    async def _volunteer_units(
        self, parsed: ParsedForm[VolunteerRow], default_unit: str | None, plan: Plan
    ) -> list[tuple[int, VolunteerRow, str, Doc]]:
        """Each row with the keyed hash of its ID number and the unit it joins; rows whose unit is missing, out of
        scope or rejected are errors."""
        if default_unit is None and self.scope.identity.role == "unit_admin":
            default_unit = self.scope.identity.unit_id
        default_doc = None
        if default_unit:
            default_doc = await self.store.unit(default_unit)
            if default_doc is None:
                raise NotFoundError("未找到该队伍")
        if default_doc is not None and not self.scope.manages_unit(default_doc):
            raise ForbiddenError("无权为该队伍导入志愿者")
        header = parsed.header_of("unit_name")
        rows: list[tuple[int, VolunteerRow, str, Doc]] = []
        for seen, (number, row) in enumerate(zip(parsed.row_numbers, parsed.rows, strict=True), start=1):
            if seen % CHECK_TICK == 0:
                await asyncio.sleep(0)
            unit = await self.stored_unit(row.unit_name) if row.unit_name else default_doc
            message: str | None = None
            if unit is None:
                message = "请填写所属队伍"
                if row.unit_name:
                    message = f"所属队伍“{row.unit_name}”在平台上不存在，请填写已注册组织的全称"
            elif not self.scope.manages_unit(unit):
                message = f"无权为“{unit['name']}”导入志愿者"
            elif unit["status"] == UnitStatus.REJECTED.value:
                message = f"“{unit['name']}”的注册已被驳回"
            if message is not None or unit is None:
                plan.errors.append(RowError(parsed.sheet, number, header, message or ""))
                continue
            rows.append((number, row, self.cipher.hash(row.profile.id_number), unit))
        return rows

    # -- 附件3 ------------------------------------------------------------------------------------------
    async def contacts(self, parsed: ParsedForm[ContactRow]) -> Plan:
        plan = Plan()
        header = parsed.header_of("unit_name")
        for number, row in zip(parsed.row_numbers, parsed.rows, strict=True):
            unit = await self.stored_unit(row.unit_name)
            if unit is None:
                plan.errors.append(RowError(parsed.sheet, number, header, f"单位“{row.unit_name}”在平台上不存在"))
            elif not self.scope.manages_unit(unit):
                plan.errors.append(RowError(parsed.sheet, number, header, f"无权修改“{row.unit_name}”的联系人"))
            elif unit.get("contact") == row.contact.model_dump():
                plan.unchanged += 1
            else:
                plan.updated.append((unit["_id"], row.contact.model_dump()))
        return plan


def name_problem(row: OrganisationRow, stored_parent: Doc | None, in_file: Mapping[str, Any]) -> tuple[str, str] | None:
    """A row whose name does not follow the notice's pattern (with the suggested name), against its parent: the
    parent's row in the file, else the stored parent."""
    profile = row.profile
    parent_name, parent_kind, parent_city = None, None, None
    if row.parent_name and row.parent_name in in_file:
        parent_row: OrganisationRow = in_file[row.parent_name][1]
        parent_name, parent_kind, parent_city = row.parent_name, parent_row.profile.kind, parent_row.profile.city
    elif stored_parent is not None:
        parent_name, parent_kind = stored_parent["name"], UnitKind(stored_parent["kind"])
        parent_city = stored_parent.get("city")
    city = profile.city or parent_city
    suggestion = name_suggestion(
        profile.kind, profile.name, city=city, parent_name=parent_name, parent_kind=parent_kind
    )
    if suggestion is None:
        return None
    return "name", name_refusal(profile.kind, profile.name, suggestion)


def same_unit(stored: Mapping[str, Any], row: OrganisationRow, parent: Mapping[str, Any] | None) -> bool:
    """Whether a row says what is stored already (same parent, same data): a re-upload imports nothing new."""
    if stored["status"] == UnitStatus.REJECTED.value:
        return False
    mine = profile_fields(row.profile)
    mine["city"] = row.profile.city or (parent.get("city") if parent else None)
    same_parent = (parent["_id"] if parent else None) == stored.get("parent_id")
    return same_parent and all(stored.get(k) == v for k, v in mine.items())
