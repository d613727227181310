"""Collective registration with the spreadsheets (附件1 organisations, 附件2 volunteers, 附件3 contacts).

Blank templates, uploads checked whole (every row, against the file and the stored data) and imported all or
nothing, and exports that re-import unchanged. A row equal to what is stored already is *unchanged* (so a
re-upload of the same file imports nothing new); a row that collides with different stored data is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from pymongo.errors import BulkWriteError, DuplicateKeyError
from starlette.datastructures import UploadFile

from services.registry.api import RegistryDep
from services.registry.domain.codes import MembershipStatus, UnitStatus
from services.registry.domain.errors import (
    CorpsExistsError,
    DuplicateNameError,
    DuplicatePersonError,
    ForbiddenError,
    InvalidParentError,
)
from services.registry.domain.fields import mask_id_number
from services.registry.domain.memberships import Membership, request_membership
from services.registry.domain.scope import Scope
from services.registry.domain.units import CORPS_NAME, check_parent
from services.registry.domain.volunteers import VolunteerProfile
from services.registry.forms import (
    CONTACTS,
    MAX_UPLOAD_BYTES,
    ORGANISATIONS,
    VOLUNTEERS,
    ContactRow,
    FormError,
    FormKind,
    OrganisationRow,
    ParsedForm,
    RowError,
    VolunteerRow,
    build_template,
    export_form,
    find_form,
    parse_upload,
)
from services.registry.import_log import HIDE_PENDING, ImportLog, pending
from services.registry.lookups import IdLookups
from services.registry.store import (
    CORPS_KEY,
    UNITS,
    VOLUNTEER_PROFILE_FIELDS,
    Registry,
    membership_entry,
    profile_fields,
    unit_event,
    unit_profile,
    volunteer_fields,
)
from services.registry.store import VOLUNTEERS as VOLUNTEER_COLLECTION
from shared import clock
from shared.aggregates import in_transaction
from shared.contracts.events import UnitRegistered
from shared.identity import Identity, require_roles
from shared.problems import Problem
from shared.storage import Doc
from shared.vocabulary import UnitKind

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ADMINS = require_roles("province_admin", "unit_admin")
LOOKUP_CHUNK = 2_000  # keyed hashes per indexed lookup ({id_hash: {$in: [...]}})
DEFAULT_IMPORT_LEASE_S = 60.0
DUPLICATE_KEY = 11000
INSERT_CHUNK = 2_000  # volunteer documents per insert: each command well inside the socket timeout

ELSEWHERE = DuplicatePersonError(elsewhere=True)

forms = APIRouter(prefix="/forms", tags=["集体注册"])


class RowErrorOut(BaseModel):
    sheet: str
    row: int
    column: str | None
    message: str


class ImportReport(BaseModel):
    form: str
    dry_run: bool
    total_rows: int
    created: int = Field(description="新注册（或演练时将注册）的条数")
    updated: int = Field(0, description="更新的条数（附件3联系人）")
    unchanged: int = Field(description="与已存数据相同、无需导入的条数")
    errors: list[RowErrorOut] = Field(default_factory=list)


@dataclass
class Plan:
    """What an upload would do, and every problem found."""

    errors: list[RowError] = field(default_factory=list)
    unchanged: int = 0
    elsewhere: int = 0  # rows whose ID number is registered outside the caller's scope (counted, recorded)
    created: list[Any] = field(default_factory=list)
    updated: list[Any] = field(default_factory=list)


def _duplicate_key(error: BulkWriteError) -> bool:
    return any(e.get("code") == DUPLICATE_KEY for e in error.details.get("writeErrors", []))


def _collided_on_person(error: BulkWriteError) -> bool:
    """Whether a duplicate key of this insert was a person (id_hash) rather than a platform number."""
    for e in error.details.get("writeErrors", []):
        pattern = e.get("keyPattern") or e.get("keyValue") or {}
        if "id_hash" in pattern or "id_hash" in str(e.get("errmsg", "")):
            return True
    return False


def _attachment(data: bytes, filename: str) -> Response:
    return Response(
        data,
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename=form.xlsx; filename*=UTF-8''{quote(filename)}"},
    )


def _form_problem(error: FormError) -> Problem:
    status = {"too_large": 413, "too_many_rows": 413, "not_xlsx": 415}.get(error.kind, 422)
    extra: dict[str, Any] = {}
    if error.missing:
        extra["missing_columns"] = list(error.missing)
    if error.unexpected:
        extra["unexpected_columns"] = list(error.unexpected)
    return Problem(status, f"form_{error.kind}", error.message, **extra)


# ----------------------------------------------------------------------------------------------------------
# Routes
# ----------------------------------------------------------------------------------------------------------


@forms.get(
    "/{form}/template",
    summary="下载空白集体注册信息表（附件1组织、附件2志愿者、附件3联系人）",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "xlsx 模板"}},
)
async def template(form: FormKind, identity: Identity = ADMINS) -> Response:
    spec = find_form(form)
    return _attachment(build_template(spec), f"{spec.code}{spec.title}.xlsx")


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary", "description": "填好的 xlsx"}},
                    "required": ["file"],
                }
            }
        },
    }
}


@forms.post(
    "/{form}/import",
    summary="上传集体注册信息表：逐行校验，全部无误才导入（可只演练）",
    response_model=ImportReport,
    openapi_extra=_UPLOAD_BODY,
    responses={
        413: {"description": "文件过大、解压后过大或行数过多"},
        415: {"description": "不是 xlsx"},
        422: {"description": "列数过多、表头不符或行有错误"},
        429: {"description": "今日查到在其他单位注册的身份证号码次数已达上限"},
    },
)
async def import_form(
    form: FormKind,
    request: Request,
    registry: RegistryDep,
    dry_run: bool = Query(False, description="只校验并报告，不导入"),
    unit_id: str | None = Query(None, description="附件2：未填“所属队伍”的行加入的队伍（单位管理员默认本单位）"),
    identity: Identity = ADMINS,
) -> ImportReport:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
        raise Problem(413, "form_too_large", f"文件超过{MAX_UPLOAD_BYTES // (1024 * 1024)}MB，请拆分后分批上传")
    try:
        upload = (await request.form()).get("file")
    except Exception as exc:
        raise Problem(422, "form_no_file", "请以 multipart/form-data 上传文件（字段名 file）") from exc
    if not isinstance(upload, UploadFile):
        raise Problem(422, "form_no_file", "请以 multipart/form-data 上传文件（字段名 file）")
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    await upload.close()
    spec = find_form(form)
    try:
        parsed: ParsedForm[Any] = await asyncio.to_thread(parse_upload, spec, data)
    except FormError as error:
        raise _form_problem(error) from None
    scope = Scope(identity)
    importer = Importer(registry, scope, request.app.state.import_log)
    if form is FormKind.ORGANISATIONS:
        plan = await importer.plan_organisations(parsed)
    elif form is FormKind.VOLUNTEERS:
        plan = await importer.plan_volunteers(parsed, unit_id)
    else:
        plan = await importer.plan_contacts(parsed)
    lookups: IdLookups = request.app.state.id_lookups
    purpose = "import_dry_run" if dry_run else "import"
    await lookups.charge(identity, plan.elsewhere, purpose=purpose, unit_id=unit_id)
    errors = sorted([*parsed.errors, *plan.errors], key=lambda e: (e.row, e.column or ""))
    report = ImportReport(
        form=form.value,
        dry_run=dry_run,
        total_rows=parsed.total_rows,
        created=len(plan.created),
        updated=len(plan.updated),
        unchanged=plan.unchanged,
        errors=[RowErrorOut(sheet=e.sheet, row=e.row, column=e.column, message=e.message) for e in errors],
    )
    if dry_run:
        return report
    if errors:
        raise Problem(
            422,
            "form_rows_invalid",
            f"文件中有{len({e.row for e in errors})}行共{len(errors)}处错误，整个文件未导入，请改正后重新上传",
            errors=[e.model_dump() for e in report.errors],
        )
    await importer.commit(form, plan)
    return report


@forms.get(
    "/{form}/export",
    summary="导出队伍及下级的集体注册信息表（附件2的身份证号码默认脱敏；省科协可填写事由导出完整号码）",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "xlsx"}},
)
async def export(
    form: FormKind,
    registry: RegistryDep,
    request: Request,
    unit_id: str | None = Query(None, description="队伍（含全部下级）；省科协不填时导出全省"),
    full_ids: bool = Query(False, description="附件2：导出完整身份证号码（仅省科协，须填写事由 reason；默认脱敏）"),
    reason: str | None = Query(None, max_length=200, description="导出完整身份证号码的事由（记录备查）"),
    identity: Identity = ADMINS,
) -> Response:
    scope = Scope(identity)
    reason = (reason or "").strip() or None
    if full_ids and identity.role != "province_admin":
        raise Problem(403, "full_ids_forbidden", "只有省科协管理员可以导出完整身份证号码，其他导出中的号码均已脱敏")
    if full_ids and (reason is None or len(reason) < 4):
        raise Problem(
            422, "full_ids_reason_required", "导出完整身份证号码须填写事由（reason，至少4个字），事由将记录备查"
        )
    if unit_id is None and not scope.province:
        unit_id = identity.unit_id
    units = await _subtree_units(registry, scope, unit_id)
    spec = find_form(form)
    if form is FormKind.ORGANISATIONS:
        rows: list[Any] = await _organisation_rows(registry, units)
    elif form is FormKind.VOLUNTEERS:
        rows = await _volunteer_rows(registry, units, unit_id, full_ids=full_ids)
        lookups: IdLookups = request.app.state.id_lookups  # recorded before the file leaves
        await lookups.record_export(
            identity, form=form.value, unit_id=unit_id, full_ids=full_ids, reason=reason, rows=len(rows)
        )
    else:
        rows = [
            ContactRow.model_validate({"unit_name": u["name"], "contact": u["contact"]})
            for u in units
            if u.get("contact")
        ]
    data = await asyncio.to_thread(export_form, spec, rows)
    return _attachment(data, f"{spec.code}{spec.title}.xlsx")


# ----------------------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------------------


async def _subtree_units(registry: Registry, scope: Scope, unit_id: str | None) -> list[Doc]:
    if unit_id is not None:
        root = await registry.unit(unit_id)
        if not scope.sees_unit(root):
            raise ForbiddenError("无权导出该队伍的信息：只能导出本队伍及下级队伍")
        query: dict[str, Any] = {"ancestors": unit_id}
        found = [root]
    else:
        query, found = {}, []
    cursor = registry.db[UNITS].find(query, {"_outbox": 0, "_outbox_n": 0}).sort([("registered_at", 1), ("_id", 1)])
    found.extend([d async for d in cursor])
    live = [u for u in found if u["status"] != UnitStatus.REJECTED.value]
    return sorted(live, key=lambda u: len(u.get("ancestors", [])))


async def _organisation_rows(registry: Registry, units: Sequence[Doc]) -> list[OrganisationRow]:
    names = {u["_id"]: u["name"] for u in units}
    rows = []
    for u in units:
        parent = u.get("parent_id")
        parent_name = None
        if parent is not None:
            parent_name = names.get(parent) or (await registry.unit(parent))["name"]
        rows.append(OrganisationRow(profile=unit_profile(u), parent_name=parent_name))
    return rows


async def _volunteer_rows(
    registry: Registry, units: Sequence[Doc], unit_id: str | None, *, full_ids: bool
) -> list[VolunteerRow]:
    """The volunteers (members and applicants) of these units; their ID numbers masked unless ``full_ids`` (a
    province admin who gave a reason): then decrypted, and only then."""
    names = {u["_id"]: u["name"] for u in units}
    query: dict[str, Any] = {"scope_units": unit_id, **HIDE_PENDING} if unit_id is not None else dict(HIDE_PENDING)
    rows = []
    async for doc in registry.db[VOLUNTEER_COLLECTION].find(query, {"_outbox": 0, "_outbox_n": 0}).sort("_id", 1):
        open_units = [
            uid
            for uid, m in (doc.get("memberships") or {}).items()
            if m["status"] in (MembershipStatus.ACTIVE.value, MembershipStatus.PENDING.value) and uid in names
        ]
        if not open_units:
            continue
        profile = VolunteerProfile.model_validate(
            {
                **{k: doc.get(k) for k in VOLUNTEER_PROFILE_FIELDS},
                "id_number": registry.cipher.decrypt(doc["id_cipher"])
                if full_ids
                else mask_id_number(doc["id_masked"]),
            }
        )
        rows.append(VolunteerRow(profile=profile, unit_name=names[open_units[0]]))
    return rows


# ----------------------------------------------------------------------------------------------------------
# Import planning and commit
# ----------------------------------------------------------------------------------------------------------


class Importer:
    def __init__(self, registry: Registry, scope: Scope, journal: ImportLog | None = None) -> None:
        self.registry = registry
        self.scope = scope
        self.journal = journal or ImportLog(
            registry.db, registry.outbox, VOLUNTEER_COLLECTION, lease_s=DEFAULT_IMPORT_LEASE_S
        )
        self._units_by_name: dict[str, Doc | None] = {}

    async def stored_unit(self, name: str) -> Doc | None:
        """The live unit of this name (by its name reservation)."""
        if name not in self._units_by_name:
            uid = await self.registry.unit_id_by_name(name)
            self._units_by_name[name] = await self.registry.db[UNITS].find_one({"_id": uid}) if uid else None
        return self._units_by_name[name]

    # -- 附件1 ------------------------------------------------------------------------------------------
    async def plan_organisations(self, parsed: ParsedForm[OrganisationRow]) -> Plan:
        plan = Plan()
        sheet = parsed.sheet
        header = ORGANISATIONS.header_of
        in_file: dict[str, tuple[int, OrganisationRow]] = {}
        for number, row in zip(parsed.row_numbers, parsed.rows, strict=True):
            in_file[row.profile.name] = (number, row)
        new: dict[str, tuple[int, OrganisationRow]] = {}
        for number, row in zip(parsed.row_numbers, parsed.rows, strict=True):
            errors_before = len(plan.errors)
            stored = await self.stored_unit(row.profile.name)
            parent_stored = await self.stored_unit(row.parent_name) if row.parent_name else None
            if stored is not None:
                if self._same_unit(stored, row, parent_stored):
                    plan.unchanged += 1
                else:
                    plan.errors.append(
                        RowError(sheet, number, header("name"), f"组织名称“{row.profile.name}”已被平台上的其他组织使用")
                    )
                continue
            if row.profile.kind is UnitKind.PROVINCE_CORPS:
                if not self.scope.province:
                    plan.errors.append(RowError(sheet, number, header("kind"), "只有省科协可以注册总队"))
                elif await self.registry.corps_exists():
                    plan.errors.append(RowError(sheet, number, header("kind"), f"{CORPS_NAME}已存在，全省只设一个总队"))
            elif row.parent_name and row.parent_name not in in_file:
                if parent_stored is None:
                    plan.errors.append(
                        RowError(
                            sheet,
                            number,
                            header("parent_name"),
                            f"上级组织“{row.parent_name}”未在平台注册，本表中也没有无误的该组织行",
                        )
                    )
                elif not self.scope.manages_unit(parent_stored):
                    plan.errors.append(
                        RowError(sheet, number, header("parent_name"), f"无权在“{row.parent_name}”下注册组织")
                    )
                elif parent_stored["status"] == UnitStatus.REJECTED.value:
                    plan.errors.append(
                        RowError(sheet, number, header("parent_name"), f"上级组织“{row.parent_name}”的注册已被驳回")
                    )
                else:
                    try:
                        check_parent(row.profile.kind, UnitKind(parent_stored["kind"]))
                    except InvalidParentError as failed:
                        plan.errors.append(RowError(sheet, number, header("parent_name"), failed.message))
            if len(plan.errors) == errors_before:
                new[row.profile.name] = (number, row)
        # in-file parents: resolve ancestors top-down; a parent row that failed or a cycle is an error
        docs: dict[str, Doc] = {}
        now = clock.now()

        async def build(name: str, trail: tuple[str, ...]) -> Doc | None:
            if name in docs:
                return docs[name]
            number, row = new[name]
            parent: Doc | None = None
            if row.parent_name:
                if row.parent_name in new:
                    if row.parent_name in trail:
                        plan.errors.append(RowError(sheet, number, header("parent_name"), "上级组织关系形成了循环"))
                        return None
                    parent = await build(row.parent_name, (*trail, name))
                    if parent is None:
                        return None
                elif row.parent_name in in_file and await self.stored_unit(row.parent_name) is None:
                    plan.errors.append(
                        RowError(sheet, number, header("parent_name"), f"上级组织“{row.parent_name}”所在行有错误")
                    )
                    return None
                else:
                    parent = await self.stored_unit(row.parent_name)
            doc = self.registry.new_unit_doc(row.profile, parent, None, False, self.scope, now)
            docs[name] = doc
            return doc

        for name in new:
            if name not in docs:
                await build(name, ())
        plan.created = list(docs.values())
        return plan

    @staticmethod
    def _same_unit(stored: Mapping[str, Any], row: OrganisationRow, parent: Mapping[str, Any] | None) -> bool:
        if stored["status"] == UnitStatus.REJECTED.value:
            return False
        mine = profile_fields(row.profile)
        mine["city"] = row.profile.city or (parent.get("city") if parent else None)
        same_parent = (parent["_id"] if parent else None) == stored.get("parent_id")
        return same_parent and all(stored.get(k) == v for k, v in mine.items())

    # -- 附件2 ------------------------------------------------------------------------------------------
    async def plan_volunteers(self, parsed: ParsedForm[VolunteerRow], default_unit: str | None) -> Plan:
        """Every row checked against the stored data: the persons already registered are found by their keyed
        hashes (indexed lookups, a few thousand at a time); a row equal to what is stored is unchanged."""
        plan = Plan()
        sheet = parsed.sheet
        header = VOLUNTEERS.header_of
        if default_unit is None and self.scope.identity.role == "unit_admin":
            default_unit = self.scope.identity.unit_id
        default_doc = await self.registry.unit(default_unit) if default_unit else None
        if default_doc is not None and not self.scope.manages_unit(default_doc):
            raise ForbiddenError("无权为该队伍导入志愿者")
        cipher = self.registry.cipher
        now = clock.now()
        rows: list[tuple[int, VolunteerRow, str, Doc]] = []
        for number, row in zip(parsed.row_numbers, parsed.rows, strict=True):
            unit = await self.stored_unit(row.unit_name) if row.unit_name else default_doc
            if unit is None:
                message = (
                    f"所属队伍“{row.unit_name}”在平台上不存在，请填写已注册组织的全称"
                    if row.unit_name
                    else "请填写所属队伍"
                )
                plan.errors.append(RowError(sheet, number, header("unit_name"), message))
                continue
            if not self.scope.manages_unit(unit):
                plan.errors.append(RowError(sheet, number, header("unit_name"), f"无权为“{unit['name']}”导入志愿者"))
                continue
            if unit["status"] == UnitStatus.REJECTED.value:
                plan.errors.append(RowError(sheet, number, header("unit_name"), f"“{unit['name']}”的注册已被驳回"))
                continue
            rows.append((number, row, cipher.hash(row.profile.id_number), unit))
        memberships: dict[str, Membership] = {}
        for _, _, _, unit in rows:
            if unit["_id"] not in memberships:  # the same (immutable) membership for every row of a unit
                memberships[unit["_id"]] = request_membership([], unit["_id"], requires_approval=False, at=now)
        existing = await self._lookup_hashes([h for _, _, h, _ in rows])
        for number, row, id_hash, unit in rows:
            holder = existing.get(id_hash)
            if holder is not None:
                member = (holder.get("memberships") or {}).get(unit["_id"], {}).get("status") in (
                    MembershipStatus.ACTIVE.value,
                    MembershipStatus.PENDING.value,
                )
                fields = volunteer_fields(row.profile)
                if member and all(holder.get(k) == v for k, v in fields.items()):
                    plan.unchanged += 1
                elif not self.scope.sees_volunteer(holder):  # that it exists, nothing more: no number, no unit
                    plan.elsewhere += 1
                    plan.errors.append(RowError(sheet, number, header("id_number"), ELSEWHERE.message))
                else:
                    refusal = await self.registry.duplicate_person(holder["_id"], self.scope)
                    plan.errors.append(RowError(sheet, number, header("id_number"), refusal.message))
                continue
            plan.created.append((row.profile, memberships[unit["_id"]], unit, id_hash))
        return plan

    async def _lookup_hashes(self, hashes: Sequence[str]) -> dict[str, Doc]:
        """The registered holder of each keyed hash that is taken (unique index on ``id_hash``)."""
        wanted = list(dict.fromkeys(hashes))
        volunteers = self.registry.db[VOLUNTEER_COLLECTION]
        projection = {"id_cipher": 0, "_outbox": 0, "_outbox_n": 0, "name_terms": 0}

        async def chunk(part: Sequence[str]) -> list[Doc]:
            return [doc async for doc in volunteers.find({"id_hash": {"$in": list(part)}}, projection)]

        found = await asyncio.gather(
            *(chunk(wanted[start : start + LOOKUP_CHUNK]) for start in range(0, len(wanted), LOOKUP_CHUNK))
        )
        return {doc["id_hash"]: doc for docs in found for doc in docs}

    # -- 附件3 ------------------------------------------------------------------------------------------
    async def plan_contacts(self, parsed: ParsedForm[ContactRow]) -> Plan:
        plan = Plan()
        header = CONTACTS.header_of
        for number, row in zip(parsed.row_numbers, parsed.rows, strict=True):
            unit = await self.stored_unit(row.unit_name)
            if unit is None:
                plan.errors.append(
                    RowError(parsed.sheet, number, header("unit_name"), f"单位“{row.unit_name}”在平台上不存在")
                )
            elif not self.scope.manages_unit(unit):
                plan.errors.append(
                    RowError(parsed.sheet, number, header("unit_name"), f"无权修改“{row.unit_name}”的联系人")
                )
            elif unit.get("contact") == row.contact.model_dump():
                plan.unchanged += 1
            else:
                plan.updated.append((unit["_id"], row.contact.model_dump()))
        return plan

    # -- commit -----------------------------------------------------------------------------------------
    async def commit(self, form: FormKind, plan: Plan) -> None:
        if form is FormKind.ORGANISATIONS:
            await self._commit_units(plan.created)
        elif form is FormKind.VOLUNTEERS:
            await self._commit_volunteers(plan.created)
        else:
            for unit_id, contact in plan.updated:
                await self.registry.update_unit(unit_id, {"contact": contact}, self.scope)

    async def _commit_units(self, docs: Sequence[Doc]) -> None:
        """Every unit of the file and its name reservations in one transaction: a name (or the corps) taken
        meanwhile leaves none written and announces nothing."""
        if not docs:
            return
        registry = self.registry

        async def work(tx: Any) -> None:
            for d in docs:
                keys = [d["name"], CORPS_KEY] if d["kind"] == UnitKind.PROVINCE_CORPS.value else [d["name"]]
                await registry.reserve_names(d["_id"], keys, tx)
            await registry.outbox.insert_many(UNITS, [(d, [unit_event(d, UnitRegistered)]) for d in docs], tx=tx)

        try:
            await in_transaction(registry.outbox, work)
        except (BulkWriteError, DuplicateKeyError, DuplicateNameError, CorpsExistsError):
            raise Problem(
                409, "form_conflict", "组织名称在导入过程中被其他操作占用，整个文件未导入，请重新上传"
            ) from None

    async def _commit_volunteers(self, created: Sequence[Any]) -> None:
        """One document and one ``VolunteerRegistered`` per person, all or nothing, across a crash as well: the
        documents are written as pending (with the import's id, their events kept aside, left out of every read),
        one conditional write of the import's record commits them, and only then are they flipped to visible and
        their events handed to the relay (see :mod:`services.registry.import_log`).

        Documents are inserted in chunks, and each next chunk is built and staged (documents, event payloads
        serialised, in a thread) while the current one is written, so Python's CPU work overlaps the server's. The
        unique indexes (``_id`` = platform number, ``id_hash`` = the person) refuse a person registered meanwhile
        by another request or replica."""
        if not created:
            return
        registry, scope, journal = self.registry, self.scope, self.journal
        now = clock.now()
        numbers = await registry.next_platform_numbers(len(created))
        await registry.remember_vocabulary([volunteer_fields(c[0]) for c in created])
        outbox = registry.outbox
        collection = registry.db[VOLUNTEER_COLLECTION]
        jobs = list(zip(created, numbers, strict=True))
        chunks = [jobs[start : start + INSERT_CHUNK] for start in range(0, len(jobs), INSERT_CHUNK)]
        entries: dict[str, dict[str, Doc]] = {}  # one stored membership entry per unit, shared (never mutated)
        import_id = await journal.begin(scope.identity.subject, len(created))

        def stage(chunk: Sequence[tuple[Any, str]]) -> list[tuple[Doc, Doc]]:
            staged = []
            for (profile, membership, unit, id_hash), number in chunk:
                unit_entries = entries.get(unit["_id"])
                if unit_entries is None:
                    path = [*unit.get("ancestors", []), unit["_id"]]
                    unit_entries = entries.setdefault(unit["_id"], {unit["_id"]: membership_entry(membership, path)})
                doc = registry.volunteer_doc(number, profile, now, scope, unit_entries, id_hash=id_hash)
                ready = outbox.stage_insert(doc, [registry.import_event(doc)])
                staged.append((ready, pending(ready, import_id)))
            return staged

        staged: list[Doc] = []
        next_chunk: asyncio.Task[list[tuple[Doc, Doc]]] | None = None
        committed = False
        try:
            async with journal.heartbeat(import_id):
                next_chunk = asyncio.create_task(asyncio.to_thread(stage, chunks[0]))
                for index in range(len(chunks)):
                    assert next_chunk is not None
                    current = await next_chunk
                    next_chunk = None
                    if index + 1 < len(chunks):
                        next_chunk = asyncio.create_task(asyncio.to_thread(stage, chunks[index + 1]))
                    staged.extend(ready for ready, _ in current)
                    await _insert_pending(collection, [doc for _, doc in current])
                committed = await journal.commit(import_id)
            if not committed:
                raise Problem(503, "form_import_expired", "导入耗时过长已被中止，整个文件未导入，请重新上传")
        except BaseException:
            if next_chunk is not None:
                with contextlib.suppress(BaseException):
                    await next_chunk
            if not committed:
                with contextlib.suppress(Exception):  # failing here, the recovery takes them back later
                    await journal.abort(import_id)
            raise
        await journal.publish(import_id, staged)


async def _insert_pending(collection: Any, docs: Sequence[Doc]) -> None:
    """One chunk of pending documents; a refusal becomes the problem the uploader reads."""
    try:
        await collection.insert_many(docs, ordered=True)
    except BulkWriteError as exc:
        # The error itself (it quotes the document) is not passed on: it would put personal data in logs.
        if not _duplicate_key(exc):
            raise Problem(503, "form_store_failed", "保存时数据库出错，整个文件未导入，请稍后重新上传") from None
        raise Problem(
            409,
            "form_conflict",
            "有志愿者在导入过程中已由其他操作注册，整个文件未导入，请重新上传"
            if _collided_on_person(exc)
            else "有志愿者的平台编号在导入过程中被其他操作占用，整个文件未导入，请重新上传",
        ) from None
