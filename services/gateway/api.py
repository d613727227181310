"""The gateway's HTTP surface: sign-in, accounts, the proxy below /api/v1, one OpenAPI document, readiness."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.gateway.accounts import Account, AccountPatch, NewAccount, verify_password
from services.gateway.auth import CallerDep, RateLimiter, client_ip, issue_access_token
from services.gateway.proxy import (
    READS,
    authorize,
    check_body_units,
    check_body_volunteer,
    forward,
    is_upload,
    target,
)
from shared.identity import Identity
from shared.messaging.dlq import DeadLetter, list_dead_letters, replay_dead_letters
from shared.problems import Problem
from shared.service import ReplayRequest, ReplayResult
from shared.storage import MAX_DEAD_LETTERS_LISTED, Doc

PREFIX = "/api/v1"


class SignIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class Refresh(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class Tokens(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int = Field(description="Seconds the access token stays valid")
    refresh_token: str
    refresh_expires_in: int
    account: Account


class PasswordChange(BaseModel):
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class CreatedAccount(BaseModel):
    account: Account
    api_key: str | None = Field(None, description="Only for system accounts, shown this once")


def _gw(request: Request) -> Any:
    return request.app.state.gateway


async def _throttle(limiter: RateLimiter, key: str, what: str, action: str) -> None:
    """A 429 (``<what>_rate_limited``, with Retry-After) once ``key`` has used up its rate."""
    wait = await limiter.hit(key)
    if wait:
        seconds = int(wait) + 1
        raise Problem(
            429,
            f"{what}_rate_limited",
            f"{action}过于频繁，请 {seconds} 秒后再试",
            headers={"Retry-After": str(seconds)},
        )


def auth_router() -> APIRouter:
    router = APIRouter(prefix=f"{PREFIX}/auth", tags=["登录"])

    @router.post("/signin", summary="用户名和密码登录", response_model=Tokens)
    async def signin(request: Request, body: SignIn) -> Tokens:
        gw = _gw(request)
        # every limit is checked before the password is hashed (each hash costs tens of milliseconds of CPU)
        address = client_ip(request)
        await _throttle(gw.signin_limiter, f"{body.username.lower()}|{address}", "signin", "登录尝试")
        await _throttle(gw.signin_address_limiter, address, "signin", "本地址的登录尝试")
        await _throttle(gw.signin_total_limiter, "all", "signin", "登录请求")
        doc = await gw.accounts.by_username(body.username)
        if not await verify_password((doc or {}).get("password_hash"), body.password) or doc is None:
            raise Problem(401, "bad_credentials", "用户名或密码错误")
        if doc.get("disabled"):
            raise Problem(403, "account_disabled", "账号已停用，请联系管理员")
        sid, refresh = await gw.accounts.open_session(doc, gw.settings.refresh_ttl_s)
        return _tokens(gw, doc, sid, refresh)

    @router.post("/refresh", summary="用刷新令牌换取新的访问令牌", response_model=Tokens)
    async def refresh(request: Request, body: Refresh) -> Tokens:
        gw = _gw(request)
        doc, sid, token = await gw.accounts.rotate_session(body.refresh_token, gw.settings.refresh_ttl_s)
        return _tokens(gw, doc, sid, token)

    @router.post("/signout", summary="退出登录（本会话的令牌立即失效）", status_code=204)
    async def signout(request: Request, caller: CallerDep) -> Response:
        if caller.session_id:
            await _gw(request).accounts.close_session(caller.account.id, caller.session_id)
        return Response(status_code=204)

    @router.get("/me", summary="当前账号", response_model=Account)
    async def me(caller: CallerDep) -> Account:
        return caller.account

    @router.post("/password", summary="修改本人密码（所有会话随即失效，须重新登录）", status_code=204)
    async def change_password(request: Request, body: PasswordChange, caller: CallerDep) -> Response:
        gw = _gw(request)
        doc = await gw.accounts.get(caller.account.id)
        if caller.session_id is None or doc is None:
            raise Problem(403, "password_not_allowed", "系统账号使用 API 密钥，不设密码")
        if not await verify_password(doc.get("password_hash"), body.old_password):
            raise Problem(422, "bad_old_password", "原密码不正确")
        await gw.accounts.patch(caller.account.id, AccountPatch(password=body.new_password))
        return Response(status_code=204)

    return router


def _tokens(gw: Any, doc: Doc, sid: str, refresh: str) -> Tokens:
    return Tokens(
        access_token=issue_access_token(gw.settings, doc, sid),
        expires_in=gw.settings.access_ttl_s,
        refresh_token=refresh,
        refresh_expires_in=gw.settings.refresh_ttl_s,
        account=Account.of(doc),
    )


async def account_in_scope(gw: Any, identity: Identity, doc: Doc) -> bool:
    """Province admins manage every account; a unit admin the unit admins and volunteers of its subtree."""
    if identity.role == "province_admin":
        return True
    if identity.role != "unit_admin":
        return False
    if doc.get("role") == "unit_admin" and doc.get("unit_id"):
        return bool(await gw.tree.in_scope(identity, doc["unit_id"]))
    if doc.get("role") == "volunteer" and doc.get("volunteer_id"):
        return bool(await gw.tree.volunteer_in_scope(identity, doc["volunteer_id"]))
    return False


def _admin(caller: Any) -> Identity:
    identity: Identity = caller.identity
    if identity.role not in ("province_admin", "unit_admin"):
        raise Problem(403, "forbidden_role", "只有管理员可以管理账号")
    return identity


def accounts_router() -> APIRouter:
    router = APIRouter(prefix=f"{PREFIX}/accounts", tags=["账号"])

    @router.post("", summary="创建账号（仅限本管理范围）", status_code=201, response_model=CreatedAccount)
    async def create(request: Request, body: NewAccount, caller: CallerDep) -> CreatedAccount:
        gw, identity = _gw(request), _admin(caller)
        target_doc = {"role": body.role, "unit_id": body.unit_id, "volunteer_id": body.volunteer_id}
        if not await account_in_scope(gw, identity, target_doc):
            raise Problem(403, "out_of_scope", "只能在本管理范围内创建账号")
        account, key = await gw.accounts.create(body, created_by=caller.account.id)
        return CreatedAccount(account=account, api_key=key)

    @router.get("", summary="本管理范围内的账号", response_model=list[Account])
    async def list_accounts(request: Request, caller: CallerDep) -> list[Account]:
        gw, identity = _gw(request), _admin(caller)
        return [Account.of(d) for d in await gw.accounts.all() if await account_in_scope(gw, identity, d)]

    @router.get("/{account_id}", summary="查看账号", response_model=Account)
    async def get_account(request: Request, account_id: str, caller: CallerDep) -> Account:
        gw, identity = _gw(request), _admin(caller)
        doc = await gw.accounts.get(account_id)
        if doc is None or not await account_in_scope(gw, identity, doc):
            raise Problem(404, "account_not_found", "账号不存在")
        return Account.of(doc)

    @router.patch("/{account_id}", summary="停用/启用账号、重设密码、修改显示名", response_model=Account)
    async def patch_account(request: Request, account_id: str, body: AccountPatch, caller: CallerDep) -> Account:
        gw, identity = _gw(request), _admin(caller)
        doc = await gw.accounts.get(account_id)
        if doc is None:
            raise Problem(404, "account_not_found", "账号不存在")
        if not await account_in_scope(gw, identity, doc):
            raise Problem(403, "out_of_scope", "超出本账号的管理范围，无权修改该账号")
        if account_id == caller.account.id and body.disabled:
            raise Problem(409, "cannot_disable_self", "不能停用自己的账号")
        account: Account = await gw.accounts.patch(account_id, body)
        return account

    return router


def gateway_dlq_router() -> APIRouter:
    """The gateway's own dead letters (its unit-tree and volunteer copies), for province admins."""
    router = APIRouter(prefix=f"{PREFIX}/gateway/admin/dlq", tags=["死信"])

    def topic_of(gw: Any, stream: str) -> str:
        if stream not in {s for c in gw.service.consumers for s in c.streams}:
            raise Problem(404, "unknown_stream", f"网关不消费事件流 {stream}")
        return str(gw.settings.topic(stream)) + ".dlq"

    def province(caller: Any) -> None:
        if caller.identity.role != "province_admin":
            raise Problem(403, "forbidden_role", "仅省级管理员可管理死信")

    @router.get("", summary="列出网关消费的事件流中的死信", response_model=list[DeadLetter])
    async def list_dlq(
        request: Request,
        stream: str,
        caller: CallerDep,
        limit: Annotated[int, Query(ge=1, le=MAX_DEAD_LETTERS_LISTED)] = 100,
    ) -> list[DeadLetter]:
        province(caller)
        gw = _gw(request)
        letters = await list_dead_letters(gw.settings.kafka_bootstrap, topic_of(gw, stream), limit=limit)
        groups = {c.group for c in gw.service.consumers}
        return [d for d in letters if d.consumer_group in groups or not d.consumer_group]

    @router.post("/replay", summary="问题修复后重新投递死信", response_model=ReplayResult)
    async def replay(request: Request, body: ReplayRequest, caller: CallerDep) -> ReplayResult:
        province(caller)
        gw = _gw(request)
        offsets = {(p, o) for p, o in body.offsets} if body.offsets is not None else None
        n = await replay_dead_letters(gw.settings.kafka_bootstrap, topic_of(gw, body.stream), offsets)
        return ReplayResult(replayed=n)

    return router


def proxy_router() -> APIRouter:
    router = APIRouter()

    @router.api_route(
        PREFIX + "/{path:path}",
        methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        include_in_schema=False,
    )
    async def proxy(request: Request, path: str, caller: CallerDep) -> Response:
        gw = _gw(request)
        segments = path.strip("/").split("/")
        service, upstream_path, dlq = target(segments)
        identity = caller.identity
        query = list(request.query_params.multi_items())
        await authorize(gw.tree, identity, request.method, segments, query, dlq)
        body = None
        upload = is_upload(request.headers.get("content-type", ""))
        if identity.role == "unit_admin" and request.method not in READS and not upload:
            body = await request.body()  # small: bounded by max_body_bytes
            await check_body_units(gw.tree, identity, body)
        elif identity.role == "volunteer" and request.method not in READS:
            # a volunteer's writes are small JSON (sign-up, check-in, profile): read whole, whatever the type says
            body = await request.body()
            check_body_volunteer(identity, body)
        return await forward(request, gw.upstreams, service, upstream_path, identity, body)

    return router


class CertificateCheck(BaseModel):
    """What a third party needs to verify a service-record certificate, and nothing more."""

    valid: bool = Field(description="证明编号是否有效（由平台出具且未被篡改）")
    number: str = Field(description="证明编号")
    platform_number: str | None = Field(None, description="志愿者的平台注册编号")
    name_masked: str | None = Field(None, description="打码后的姓名，如 张*普")
    hours: float | None = Field(None, description="证明所载的志愿服务时长（小时）")
    issuing_unit_name: str | None = Field(None, description="出具单位")
    issued_at: datetime | None = Field(None, description="出具时间")


def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 张科普 → 张*普, 欧阳娜娜 → 欧**娜: the first and (from three characters) the last stay."""
    if not name:
        return None
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def public_router() -> APIRouter:
    """Routes for people who are not signed in: a third party verifying a certificate (rate-limited per IP)."""
    router = APIRouter(prefix=f"{PREFIX}/public", tags=["公开查验"])

    @router.get(
        "/certificates/{number}",
        summary="查验志愿服务记录证明（凭证明编号，无需登录；按 IP 限制频率）",
        response_model=CertificateCheck,
        responses={429: {"description": "查验过于频繁"}, 503: {"description": "统计报表服务暂时不可用"}},
    )
    async def verify_certificate(
        request: Request, number: Annotated[str, PathParam(min_length=1, max_length=64)]
    ) -> CertificateCheck:
        gw = _gw(request)
        await _throttle(gw.verify_limiter, client_ip(request), "verify", "查验")
        found = await gw.upstreams.verify_certificate(number)
        if found is None or found.get("valid") is not True:
            return CertificateCheck(valid=False, number=number)
        return CertificateCheck(
            valid=True,
            number=number,
            platform_number=found.get("platform_number"),
            name_masked=mask_name(found.get("display_name")),
            hours=found.get("hours"),
            issuing_unit_name=found.get("issuing_unit_name"),
            issued_at=found.get("issued_at"),
        )

    return router


def ops_router() -> APIRouter:
    router = APIRouter(tags=["运维"])

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(await _gw(request).docs.document(request.app.openapi()))

    @router.get("/readyz", summary="依赖就绪（Kafka、MongoDB、各服务 /healthz）", operation_id="gateway_readyz")
    async def readyz(request: Request) -> JSONResponse:
        gw = _gw(request)
        ok, checks = await gw.service.readiness()
        checks["services"] = await gw.upstreams.health()
        return JSONResponse({"status": "ready" if ok else "not_ready", **checks}, status_code=200 if ok else 503)

    return router
