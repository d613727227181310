"""Routes of the collective-registration spreadsheets (附件1 organisations, 附件2 volunteers, 附件3 contacts): blank
templates, uploads (checked whole, imported all or nothing, or only rehearsed) and exports."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.datastructures import UploadFile

from services.registry.adapters.spreadsheets.forms import find_form
from services.registry.adapters.spreadsheets.layout import MAX_UPLOAD_BYTES, FormError
from services.registry.adapters.spreadsheets.marked import mark_problems
from services.registry.adapters.spreadsheets.workbook import build_template, export_form, parse_upload
from services.registry.api.deps import ADMINS, ImportJobsDep, ImportsDep
from services.registry.api.errors import form_problem
from services.registry.api.schemas import (
    JOBS_PATH,
    ImportJobOut,
    ImportReport,
    JobProblemsOut,
    import_job_out,
    import_report,
    row_error_out,
)
from services.registry.domain.imports import FileRefusedError, FormKind, ParsedForm, RowError
from services.registry.domain.scope import Scope
from shared.access import access
from shared.identity import Identity
from shared.problems import Problem

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NO_FILE = "请以 multipart/form-data 上传文件（字段名 file）"

forms = APIRouter(prefix="/forms", tags=["集体注册"])
JOB_ID = Path(description="导入任务编号", pattern=r"^[0-9a-f]{32}$")


def _attachment(data: bytes, filename: str) -> Response:
    return Response(
        data,
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename=form.xlsx; filename*=UTF-8''{quote(filename)}"},
    )


@forms.get(
    "/{form}/template",
    openapi_extra=access("unit_admin"),
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


async def _read_bytes(request: Request) -> bytes:
    """The uploaded file's bytes, bounded in size."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
        raise Problem(413, "form_too_large", f"文件超过{MAX_UPLOAD_BYTES // (1024 * 1024)}MB，请拆分后分批上传")
    try:
        upload = (await request.form()).get("file")
    except Exception as exc:
        raise Problem(422, "form_no_file", NO_FILE) from exc
    if not isinstance(upload, UploadFile):
        raise Problem(422, "form_no_file", NO_FILE)
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    await upload.close()
    return data


async def _read_upload(request: Request, form: FormKind) -> ParsedForm[Any]:
    """The uploaded file, bounded in size and parsed (off the event loop); a whole file refused is a problem."""
    data = await _read_bytes(request)
    try:
        parsed: ParsedForm[Any] = await asyncio.to_thread(parse_upload, find_form(form), data)
    except FormError as error:
        raise form_problem(error) from None
    return parsed


@forms.post(
    "/{form}/import",
    summary="上传集体注册信息表：逐行校验，全部无误才导入（可只演练；在本次请求内完成，大文件请用导入任务 imports）",
    response_model=ImportReport,
    openapi_extra={**_UPLOAD_BODY, **access("unit_admin", units=["query:unit_id"])},
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
    use: ImportsDep,
    dry_run: bool = Query(False, description="只校验并报告，不导入"),
    unit_id: str | None = Query(None, description="附件2：未填“所属队伍”的行加入的队伍（单位管理员默认本单位）"),
    identity: Identity = ADMINS,
) -> ImportReport:
    parsed = await _read_upload(request, form)
    return import_report(await use.upload(parsed, Scope(identity), dry_run=dry_run, unit_id=unit_id))


def parse_for_job(form: FormKind, data: bytes, read: Any) -> ParsedForm[Any]:
    """An upload read for a job (in a worker thread): a whole file refused is the job's refusal."""
    try:
        parsed: ParsedForm[Any] = parse_upload(find_form(form), data, read=read)
    except FormError as error:
        raise FileRefusedError(error.kind, error.message) from None
    return parsed


def mark_for_job(form: FormKind, data: bytes, problems: Sequence[RowError]) -> bytes:
    return mark_problems(find_form(form), data, problems)


@forms.get(
    "/import-jobs/{job_id}",
    openapi_extra=access("unit_admin"),
    summary="查询导入任务：状态、进度（读取、核对、保存、发布）与剩余时间估计",
)
async def import_job(jobs: ImportJobsDep, job_id: str = JOB_ID, identity: Identity = ADMINS) -> ImportJobOut:
    return import_job_out(await jobs.job(job_id, Scope(identity)))


@forms.delete(
    "/import-jobs/{job_id}",
    openapi_extra=access("unit_admin"),
    summary="取消导入任务（提交前有效，整个文件不导入）",
    status_code=202,
    responses={409: {"description": "任务已提交或已结束，不能取消"}},
)
async def cancel_import_job(jobs: ImportJobsDep, job_id: str = JOB_ID, identity: Identity = ADMINS) -> ImportJobOut:
    return import_job_out(await jobs.cancel(job_id, Scope(identity)))


@forms.post(
    "/import-jobs/{job_id}/cancel",
    openapi_extra=access("unit_admin"),
    summary="取消导入任务（同 DELETE，供只能发 POST 的客户端）",
    status_code=202,
    responses={409: {"description": "任务已提交或已结束，不能取消"}},
)
async def cancel_import_job_post(
    jobs: ImportJobsDep, job_id: str = JOB_ID, identity: Identity = ADMINS
) -> ImportJobOut:
    return import_job_out(await jobs.cancel(job_id, Scope(identity)))


@forms.get(
    "/import-jobs/{job_id}/problems", openapi_extra=access("unit_admin"), summary="导入任务发现的全部问题（JSON 清单）"
)
async def import_job_problems(jobs: ImportJobsDep, job_id: str = JOB_ID, identity: Identity = ADMINS) -> JobProblemsOut:
    found = await jobs.problems(job_id, Scope(identity))
    errors = [row_error_out(RowError(p["sheet"], p["row"], p.get("column"), p["message"])) for p in found]
    return JobProblemsOut(job_id=job_id, total=len(errors), errors=errors)


@forms.get(
    "/import-jobs/{job_id}/marked.xlsx",
    openapi_extra=access("unit_admin", personal=True),
    summary="下载标注了问题的上传文件副本（问题单元格红底并加批注，另附“问题清单”工作表）",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "xlsx"}},
)
async def import_job_marked(jobs: ImportJobsDep, job_id: str = JOB_ID, identity: Identity = ADMINS) -> Response:
    return _attachment(await jobs.marked(job_id, Scope(identity)), "导入问题标注.xlsx")


@forms.post(
    "/{form}/imports",
    summary="提交集体注册信息表导入任务（立即返回 202 与任务；大文件请用此接口）",
    status_code=202,
    openapi_extra={**_UPLOAD_BODY, **access("unit_admin", units=["query:unit_id"])},
    responses={
        202: {"description": "已受理：任务编号与查询地址（Location）"},
        413: {"description": "文件过大"},
        422: {"description": "没有文件"},
    },
)
async def start_import_job(
    form: FormKind,
    request: Request,
    response: Response,
    jobs: ImportJobsDep,
    dry_run: bool = Query(False, description="只校验并报告，不导入"),
    unit_id: str | None = Query(None, description="附件2：未填“所属队伍”的行加入的队伍（单位管理员默认本单位）"),
    identity: Identity = ADMINS,
) -> ImportJobOut:
    data = await _read_bytes(request)
    doc = await jobs.start(form, data, Scope(identity), dry_run=dry_run, unit_id=unit_id)
    response.headers["Location"] = f"{JOBS_PATH}/{doc['_id']}"
    return import_job_out({**doc, "fraction": 0.0})


@forms.get(
    "/{form}/export",
    openapi_extra=access("unit_admin", units=["query:unit_id"], personal=True),
    summary="导出队伍及下级的集体注册信息表（附件2的身份证号码默认脱敏；省科协可填写事由导出完整号码）",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "xlsx"}},
)
async def export(
    form: FormKind,
    use: ImportsDep,
    unit_id: str | None = Query(None, description="队伍（含全部下级）；省科协不填时导出全省"),
    full_ids: bool = Query(False, description="附件2：导出完整身份证号码（仅省科协，须填写事由 reason；默认脱敏）"),
    reason: str | None = Query(None, max_length=200, description="导出完整身份证号码的事由（记录备查）"),
    identity: Identity = ADMINS,
) -> Response:
    reason = (reason or "").strip() or None
    if full_ids and identity.role != "province_admin":
        raise Problem(403, "full_ids_forbidden", "只有省科协管理员可以导出完整身份证号码，其他导出中的号码均已脱敏")
    if full_ids and (reason is None or len(reason) < 4):
        raise Problem(
            422, "full_ids_reason_required", "导出完整身份证号码须填写事由（reason，至少4个字），事由将记录备查"
        )
    rows = await use.export(form, unit_id, Scope(identity), full_ids=full_ids, reason=reason)
    spec = find_form(form)
    data = await asyncio.to_thread(export_form, spec, rows)
    return _attachment(data, f"{spec.code}{spec.title}.xlsx")
