"""Typed request and response bodies of the registry's API, and the answers built from the records (the JSON the
routes answer; the ID-card number only masked)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.registry.domain.codes import UnitStatus
from services.registry.domain.contact import ContactDraft
from services.registry.domain.fields import mask_id_number
from services.registry.domain.imports import JOB_STATE_LABELS, JobState, RowError
from services.registry.domain.leaders import LeaderDraft
from services.registry.domain.records import compliance
from services.registry.usecases.imports import ImportOutcome
from services.registry.usecases.ports import Page
from shared.vocabulary import LeaderRole, UnitKind


class ContactIn(BaseModel):
    name: str | None = None
    post: str | None = None
    office_phone: str | None = None
    mobile: str | None = None
    email: str | None = None


class LeaderIn(BaseModel):
    name: str | None = None
    role: str | None = Field(None, description="职务：代码或中文（如 支队长、副支队长、队长、分队负责人）")
    mobile: str | None = None


class UnitIn(BaseModel):
    """队伍注册信息。`kind` 与职务可填代码或中文名称。"""

    name: str | None = Field(None, description="组织名称；不填时按 base 和类型生成规范名称")
    base: str | None = Field(None, description="生成规范名称的基础（城市、学会、高校、企业、县市区或院系名称）")
    kind: str
    parent_id: str | None = Field(None, description="上级队伍；总队不填")
    city: str | None = None
    credit_code: str | None = Field(None, description="统一社会信用代码（如有）")
    phone: str | None = None
    address: str | None = None
    founded_on: date | str | None = None
    declared_members: int | str | None = None
    leaders: list[LeaderIn] = Field(default_factory=list)
    contact: ContactIn | None = Field(None, description="工作联系人（附件3）")
    member_approval: bool = Field(False, description="志愿者加入本队伍是否需要审核")


class UnitPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    leaders: list[LeaderIn] | None = None
    contact: ContactIn | None = None
    credit_code: str | None = None
    phone: str | None = None
    address: str | None = None
    member_approval: bool | None = None


class Reason(BaseModel):
    reason: str = Field(description="驳回原因")


class UnitMoveIn(BaseModel):
    new_parent_id: str = Field(description="新的上级组织编号")
    reason: str = Field(description="调整原因（必填，至多200字）")


class UnitMoveRecord(BaseModel):
    from_parent_id: str | None = Field(description="原上级组织编号")
    to_parent_id: str = Field(description="新上级组织编号")
    reason: str
    at: datetime


class LeaderOut(BaseModel):
    name: str
    role: str
    role_label: str
    mobile: str | None = None


class UnitOut(BaseModel):
    id: str
    name: str
    kind: str
    kind_label: str
    parent_id: str | None
    ancestors: list[str]
    city: str | None
    status: str
    status_label: str
    reason: str | None = None
    credit_code: str | None = None
    phone: str | None = None
    address: str | None = None
    founded_on: str | None = None
    declared_members: int | None = None
    leaders: list[LeaderOut]
    contact: dict[str, Any] | None = None
    member_approval: bool = False
    registered_at: datetime
    version: int
    leader_gaps: list[str] = Field(default_factory=list, description="负责人配备与规定的差距（提示，不是错误）")
    moves: list[UnitMoveRecord] = Field(default_factory=list, description="调整上级组织的记录（自早而晚）")


class UnitMoveOut(BaseModel):
    unit: UnitOut = Field(description="调整后的队伍")
    move_id: str = Field(description="本次调整的编号")
    propagation: str = Field(
        description="下级队伍与志愿者范围的同步状态：units（下级队伍）→ volunteers（志愿者）→ done；在后台分批完成"
    )


class UnitPage(BaseModel):
    items: list[UnitOut]
    total: int
    skip: int
    limit: int


class NameSuggestion(BaseModel):
    name: str
    available: bool


class VolunteerIn(BaseModel):
    """志愿者注册信息（附件2 的字段）。编码字段可填代码或中文。"""

    name: str | None = None
    gender: str | None = None
    id_number: str | None = Field(None, description="18位身份证号码；加密存储，只显示打码后的号码")
    mobile: str | None = None
    email: str | None = None
    employer: str | None = None
    title: str | None = None
    title_level: str | None = None
    education: str | None = None
    professional_field: str | None = None
    political_status: str | None = None
    skills: list[str] = Field(default_factory=list)
    service_areas: list[str] = Field(default_factory=list)
    unit_id: str | None = Field(None, description="加入的队伍；单位管理员不填时为本单位")

    def __repr__(self) -> str:  # never show the ID-card number
        return f"VolunteerIn(name={self.name!r})"


class VolunteerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    mobile: str | None = None
    email: str | None = None
    employer: str | None = None
    title: str | None = None
    title_level: str | None = None
    education: str | None = None
    professional_field: str | None = None
    political_status: str | None = None
    skills: list[str] | None = None
    service_areas: list[str] | None = None


class MembershipOut(BaseModel):
    unit_id: str
    status: str
    requested_at: datetime
    joined_at: datetime | None = None
    left_at: datetime | None = None
    reason: str | None = None


class VolunteerOut(BaseModel):
    id: str
    platform_number: str
    name: str
    gender: str
    id_number_masked: str = Field(description="打码后的身份证号码；完整号码不经接口返回")
    mobile: str
    email: str | None = None
    employer: str
    title: str | None = None
    title_level: str
    education: str
    professional_field: str
    political_status: str
    skills: list[str]
    service_areas: list[str]
    status: str
    unit_ids: list[str]
    memberships: list[MembershipOut]
    registered_at: datetime
    version: int


class VolunteerPage(BaseModel):
    items: list[VolunteerOut]
    total: int
    skip: int
    limit: int


class UnitRef(BaseModel):
    """A unit on a path: who it is, nothing about its people (leaders, contacts, phones, addresses)."""

    id: str
    name: str
    kind: str
    kind_label: str


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


def unit_out(doc: dict[str, Any]) -> UnitOut:
    return UnitOut(
        id=doc["_id"],
        name=doc["name"],
        kind=doc["kind"],
        kind_label=UnitKind(doc["kind"]).label,
        parent_id=doc.get("parent_id"),
        ancestors=doc.get("ancestors", []),
        city=doc.get("city"),
        status=doc["status"],
        status_label=UnitStatus(doc["status"]).label,
        reason=doc.get("reason"),
        credit_code=doc.get("credit_code"),
        phone=doc.get("phone"),
        address=doc.get("address"),
        founded_on=doc.get("founded_on"),
        declared_members=doc.get("declared_members"),
        leaders=[
            LeaderOut(name=x["name"], role=x["role"], role_label=LeaderRole(x["role"]).label, mobile=x.get("mobile"))
            for x in doc.get("leaders", [])
        ],
        contact=doc.get("contact"),
        member_approval=bool(doc.get("member_approval")),
        registered_at=doc["registered_at"],
        version=doc["version"],
        leader_gaps=compliance(doc)["leader_gaps"],
        moves=[UnitMoveRecord.model_validate(m) for m in doc.get("moves") or []],
    )


def volunteer_out(doc: dict[str, Any]) -> VolunteerOut:
    return VolunteerOut(
        id=doc["_id"],
        platform_number=doc["platform_number"],
        name=doc["name"],
        gender=doc["gender"],
        id_number_masked=mask_id_number(doc["id_masked"]),  # documents stored with the former mask too
        mobile=doc["mobile"],
        email=doc.get("email"),
        employer=doc["employer"],
        title=doc.get("title"),
        title_level=doc["title_level"],
        education=doc["education"],
        professional_field=doc["professional_field"],
        political_status=doc["political_status"],
        skills=doc.get("skills", []),
        service_areas=doc.get("service_areas", []),
        status=doc.get("status", "active"),
        unit_ids=doc.get("unit_ids", []),
        memberships=[
            MembershipOut(unit_id=uid, **{k: v for k, v in m.items() if k != "path"})
            for uid, m in (doc.get("memberships") or {}).items()
        ],
        registered_at=doc["registered_at"],
        version=doc["version"],
    )


def unit_page(page: Page) -> UnitPage:
    return UnitPage(items=[unit_out(d) for d in page.items], total=page.total, skip=page.skip, limit=page.limit)


def volunteer_page(page: Page) -> VolunteerPage:
    return VolunteerPage(
        items=[volunteer_out(d) for d in page.items], total=page.total, skip=page.skip, limit=page.limit
    )


def unit_ref(doc: dict[str, Any]) -> UnitRef:
    return UnitRef(id=doc["_id"], name=doc["name"], kind=doc["kind"], kind_label=UnitKind(doc["kind"]).label)


def leader_drafts(leaders: list[LeaderIn]) -> list[LeaderDraft]:
    return [LeaderDraft.model_validate(x.model_dump()) for x in leaders]


def contact_draft(contact: ContactIn) -> ContactDraft:
    return ContactDraft.model_validate(contact.model_dump())


def row_error_out(e: RowError) -> RowErrorOut:
    return RowErrorOut(sheet=e.sheet, row=e.row, column=e.column, message=e.message)


def import_report(outcome: ImportOutcome) -> ImportReport:
    return ImportReport(
        form=outcome.form.value,
        dry_run=outcome.dry_run,
        total_rows=outcome.total_rows,
        created=outcome.created,
        updated=outcome.updated,
        unchanged=outcome.unchanged,
        errors=[row_error_out(e) for e in outcome.errors],
    )


# -- upload jobs ---------------------------------------------------------------------------------------------

JOBS_PATH = "/api/v1/forms/import-jobs"  # where the gateway serves them


class JobProgressOut(BaseModel):
    total: int = Field(description="文件中的数据行数（读完后可知）")
    read: int = Field(description="已读取并逐行校验的行数")
    checked: int = Field(description="已与平台已有数据核对的行数")
    to_store: int = Field(description="将保存的条数（核对后可知）")
    stored: int = Field(description="已保存的条数（提交前对他人不可见）")
    to_publish: int = Field(description="将发布的事件数")
    published: int = Field(description="已发布的事件数")


class JobResultOut(BaseModel):
    form: str
    dry_run: bool
    total_rows: int
    created: int = Field(description="新注册（或演练时将注册）的条数")
    updated: int = Field(0, description="更新的条数（附件3联系人）")
    unchanged: int = Field(description="与已存数据相同、无需导入的条数")
    problems: int = Field(description="发现的问题数（清单见 problems_url）")


class JobProblemOut(BaseModel):
    code: str
    detail: str


class ImportJobOut(BaseModel):
    id: str
    form: str
    dry_run: bool
    unit_id: str | None = None
    state: str = Field(description="queued、reading、checking、storing、publishing、succeeded、failed、cancelled")
    state_label: str
    cancel_requested: bool = Field(description="已请求取消，等待任务停止")
    progress: JobProgressOut
    fraction: float = Field(description="完成比例（0–1）")
    remaining_s: float | None = Field(None, description="按目前速度估计的剩余秒数（无法估计时为空）")
    created_at: datetime
    finished_at: datetime | None = None
    result: JobResultOut | None = Field(None, description="核对结果（条数）")
    problem: JobProblemOut | None = Field(None, description="未导入的原因")
    status_url: str
    problems_url: str | None = Field(None, description="问题清单（JSON）")
    marked_url: str | None = Field(None, description="标注了问题的 xlsx（在单元格中以红底和批注标出）")


class JobProblemsOut(BaseModel):
    job_id: str
    total: int
    errors: list[RowErrorOut]


def import_job_out(doc: dict[str, Any]) -> ImportJobOut:
    state = JobState(doc["state"])
    progress = dict.fromkeys(JobProgressOut.model_fields, 0) | (doc.get("progress") or {})
    result = doc.get("result")
    url = f"{JOBS_PATH}/{doc['_id']}"
    marked = bool(doc.get("has_marked")) and state.finished
    return ImportJobOut(
        id=doc["_id"],
        form=doc["form"],
        dry_run=doc["dry_run"],
        unit_id=doc.get("unit_id"),
        state=state.value,
        state_label=JOB_STATE_LABELS[state],
        cancel_requested=bool(doc.get("cancel_requested")) and not state.finished,
        progress=JobProgressOut.model_validate(progress),
        fraction=doc.get("fraction", 0.0),
        remaining_s=doc.get("remaining_s"),
        created_at=doc["created_at"],
        finished_at=doc.get("finished_at"),
        result=None if result is None else JobResultOut.model_validate(result),
        problem=JobProblemOut.model_validate(doc["problem"]) if doc.get("problem") else None,
        status_url=url,
        problems_url=f"{url}/problems" if marked else None,
        marked_url=f"{url}/marked.xlsx" if marked else None,
    )
