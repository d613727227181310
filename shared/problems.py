"""RFC 9457 problem details: one error shape for every service, Chinese text for people."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure, PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.aggregates import Contended

log = logging.getLogger("stvs.problems")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://stvs.hebei.example/problems/"

STATUS_TITLES = {
    400: "请求有误",
    401: "未登录或登录已失效",
    403: "没有权限执行此操作",
    404: "未找到",
    405: "不支持该请求方法",
    409: "与现有数据冲突",
    413: "上传内容过大",
    415: "不支持的文件类型",
    422: "提交的数据未通过校验",
    429: "请求过于频繁，请稍后再试",
    500: "服务器内部错误",
    502: "上游服务返回了无效响应",
    503: "服务暂时不可用，请稍后重试",
    504: "上游服务响应超时",
}


class Problem(Exception):
    """An error the caller can act on. ``code`` is stable for programs; ``detail`` is Chinese for people."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or STATUS_TITLES.get(status, "请求未能完成")
        self.errors = errors
        self.headers = headers
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(instance), status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )


_MSG_ZH = {
    "missing": "必填项缺失",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "string_pattern_mismatch": "格式不正确",
    "int_parsing": "应为整数",
    "float_parsing": "应为数字",
    "bool_parsing": "应为是/否",
    "datetime_parsing": "日期时间格式不正确",
    "datetime_from_date_parsing": "日期时间格式不正确",
    "date_from_datetime_parsing": "日期格式不正确",
    "enum": "不是允许的取值",
    "literal_error": "不是允许的取值",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "greater_than": "数值过小",
    "less_than": "数值过大",
    "json_invalid": "请求体不是有效的 JSON",
    "value_error": "取值无效",
    "model_attributes_type": "格式不正确",
    "dict_type": "应为对象",
    "list_type": "应为列表",
    "string_type": "应为文本",
    "url_parsing": "网址格式不正确",
    "url_scheme": "网址应以 http:// 或 https:// 开头",
    "too_long": "条目过多",
    "too_short": "条目过少",
    "extra_forbidden": "不允许的字段",
}


def _body_not_json(request: Request, exc: RequestValidationError) -> bool:
    """A JSON body sent with another media type (e.g. text/plain) reaches validation as text, not an object."""
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json") or media.startswith("multipart/"):
        return False
    body_errors = [e for e in exc.errors() if tuple(e.get("loc", ()))[:1] == ("body",)]
    return bool(body_errors) and all(
        e.get("type") in ("model_attributes_type", "dict_type", "json_invalid") and len(e.get("loc", ())) == 1
        for e in body_errors
    )


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
        msg = e.get("ctx", {}).get("message_zh") or _MSG_ZH.get(e.get("type", ""), "取值无效")
        out.append({"field": ".".join(loc), "message": msg, "type": e.get("type", "")})
    return out


async def _problem(request: Request, exc: Problem) -> JSONResponse:
    return problem_response(exc, request.url.path)


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    if _body_not_json(request, exc):
        return problem_response(
            Problem(
                415,
                "json_expected",
                "请求体应为 JSON：请以 Content-Type: application/json 发送（当前为 "
                f"{request.headers.get('content-type') or '未注明'}）",
            ),
            request.url.path,
        )
    errors = validation_errors(exc)
    fields = "、".join(sorted({e["field"] for e in errors if e["field"]})) or "请求"
    return problem_response(
        Problem(422, "validation", f"以下内容未通过校验：{fields}", errors=errors), request.url.path
    )


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) and not exc.detail.isascii() else None
    title = STATUS_TITLES.get(exc.status_code, "请求未能完成")
    return problem_response(
        Problem(
            exc.status_code,
            f"http_{exc.status_code}",
            detail or title,
            headers=dict(exc.headers) if exc.headers else None,
        ),
        request.url.path,
    )


async def _contended(request: Request, exc: Contended) -> JSONResponse:
    log.warning("contended write on %s: %s", request.url.path, exc.collection)
    return problem_response(
        Problem(
            503,
            "contended",
            "该记录正被多人同时修改，本次操作未保存，请稍后重试",
            headers={"Retry-After": "1"},
        ),
        request.url.path,
    )


async def _db_down(request: Request, exc: ConnectionFailure) -> JSONResponse:
    log.warning("database unreachable: %s", type(exc).__name__)
    return problem_response(
        Problem(
            503,
            "database_unavailable",
            "数据库暂时不可用，本次操作未保存，请稍后重试",
            headers={"Retry-After": "5"},
        ),
        request.url.path,
    )


async def _db_error(request: Request, exc: PyMongoError) -> JSONResponse:
    # Type and code only: a server's message can quote the document (names, phone numbers) or the key it hit.
    log.error("database error: %s code=%s", type(exc).__name__, getattr(exc, "code", None))
    return problem_response(Problem(500, "database_error", "数据库操作失败，请稍后重试"), request.url.path)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(Problem(500, "internal", "服务器内部错误，已记录，请稍后重试"), request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error to a problem document, once."""
    app.add_exception_handler(Problem, _problem)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Contended, _contended)  # type: ignore[arg-type]
    app.add_exception_handler(ConnectionFailure, _db_down)  # type: ignore[arg-type]
    app.add_exception_handler(PyMongoError, _db_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


def out_of_scope(read: bool, headers: dict[str, str] | None = None) -> Problem:
    """Out of the caller's scope (:mod:`shared.scope`): 404 for reads (nothing is revealed), 403 for writes."""
    if read:
        return Problem(404, "not_found", "未找到该资源，或不在本账号的范围内", headers=dict(headers or {}))
    return Problem(403, "out_of_scope", "超出本账号的管理范围，无权执行此操作", headers=dict(headers or {}))


# -- documentation: the one Problem schema every error answer of the OpenAPI document refers to
#: the shared ``code`` values and what they mean (services add their own domain codes, e.g. ``unit_not_found``)
COMMON_CODES: dict[str, str] = {
    "validation": "422 请求参数或请求体未通过校验（errors[] 逐项说明）",
    "json_expected": "415 请求体应为 JSON",
    "no_identity": "401 未登录（缺少访问令牌或 API 密钥）",
    "bad_identity": "401 身份无效或已过期",
    "forbidden_role": "403 当前角色无权执行此操作",
    "out_of_scope": "403 超出本账号的管理范围",
    "not_found": "404 资源不存在，或不在本账号的范围内",
    "form_too_large": "413 上传的表格过大",
    "upload_too_large": "413 上传的文件超过网关的上限",
    "body_too_large": "413 请求体超过网关的上限",
    "contended": "503 记录正被多人同时修改，稍后重试",
    "database_unavailable": "503 数据库暂时不可用，稍后重试",
    "service_unavailable": "503 上游服务暂时不可用，稍后重试",
    "bad_gateway": "502 上游服务返回了无效响应",
    "upstream_timeout": "504 上游服务响应超时",
    "database_error": "500 数据库操作失败",
    "internal": "500 服务器内部错误",
    "not_signed_in": "401 请先登录",
    "invalid_token": "401 访问令牌无效",
    "token_expired": "401 登录已过期，请刷新或重新登录",
    "session_ended": "401 登录已失效（已退出或改过密码）",
    "invalid_api_key": "401 API 密钥无效或已停用",
    "bad_credentials": "401 用户名或密码错误",
    "signin_rate_limited": "429 登录尝试过于频繁（Retry-After）",
    "verify_rate_limited": "429 证书查验过于频繁（Retry-After）",
    "id_lookup_quota_exceeded": "429 今日查到在其他单位注册的身份证号码次数已达上限",
}
#: the services' domain codes (their Chinese detail says what happened); tests/contracts/test_problem_codes.py
#: checks that every code the sources raise is listed here or above
DOMAIN_CODES: tuple[str, ...] = (
    "account_disabled", "account_not_found", "activity_cancelled", "activity_completed", "activity_invalid",
    "activity_not_editable", "activity_not_found", "activity_not_open", "activity_not_published", "already_checked_in",
    "already_checked_out", "already_member", "already_signed_up", "at_for_admins", "bad_cursor", "bad_old_password",
    "bad_subscriber_url", "binding_missing", "cancel_reason_required", "cannot_disable_self", "checkin_code_mismatch",
    "checkin_code_required", "checkin_outside_window", "checkin_refused", "checkout_before_checkin", "conflict",
    "corps_exists", "correction_hours_out_of_range", "correction_reason_required", "demand_not_found",
    "duplicate_name", "duplicate_person", "forbidden_scope", "form_conflict", "form_no_file", "form_rows_invalid",
    "full_ids_forbidden", "full_ids_reason_required", "invalid_correction", "invalid_demand_transition",
    "invalid_leader_role",
    "invalid_parent", "invalid_refresh_token", "invalid_transition", "membership_limit", "method_not_allowed",
    "naive_time", "name_pattern", "no_volunteer", "not_checked_in", "not_confirmed", "not_unit_admin", "not_yourself",
    "password_missing", "password_not_allowed", "publicity_before_completion", "read_only", "registry_error",
    "signup_closed", "signup_not_active", "signup_not_found", "signup_not_yet_open", "signup_refused",
    "signup_window_closed", "subscription_not_found", "time_in_future", "unit_not_found", "unknown_event_type",
    "unknown_stream", "username_taken", "validation_failed", "volunteer_inactive", "volunteer_out_of_scope",
    "volunteer_required", "volunteer_unknown",
)  # fmt: skip


def problem_schema(codes: dict[str, str] | None = None) -> dict[str, Any]:
    """The OpenAPI (3.1, JSON Schema) schema of a problem document (RFC 9457) with the platform's ``code`` values
    listed in the description of ``code``."""
    listed = codes if codes is not None else COMMON_CODES
    return {
        "title": "Problem",
        "type": "object",
        "description": "RFC 9457 问题详情：所有错误回答的统一格式（媒体类型 application/problem+json）。",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri", "description": f"{TYPE_BASE}<code>"},
            "title": {"type": "string", "description": "按状态码的中文标题"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "给人读的中文说明"},
            "code": {
                "type": "string",
                "description": "稳定的错误代码，供程序判断。平台使用的代码：\n"
                + "\n".join(f"- `{code}`: {meaning}" for code, meaning in sorted(listed.items()))
                + "\n\n各服务的业务代码（detail 用中文说明原因）："
                + "、".join(f"`{code}`" for code in DOMAIN_CODES),
            },
            "instance": {"type": "string", "description": "出错请求的路径"},
            "errors": {
                "type": "array",
                "description": "校验错误逐项说明（code = validation 时）",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                    },
                },
            },
        },
        "additionalProperties": True,
    }
