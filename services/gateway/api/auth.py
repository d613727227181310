"""Sign-in, token refresh, sign-out, the current account, a password change."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.gateway.usecases import SignedIn

from .deps import CallerDep, UseCasesDep, client_ip
from .schemas import Account, PasswordChange, Refresh, SignIn, Tokens

PREFIX = "/api/v1"
router = APIRouter(prefix=f"{PREFIX}/auth", tags=["登录"])


def tokens(signed_in: SignedIn) -> Tokens:
    return Tokens(
        access_token=signed_in.access_token,
        expires_in=signed_in.expires_in,
        refresh_token=signed_in.refresh_token,
        refresh_expires_in=signed_in.refresh_expires_in,
        account=signed_in.account,
    )


@router.post("/signin", summary="用户名和密码登录", response_model=Tokens)
async def signin(request: Request, body: SignIn, uc: UseCasesDep) -> Tokens:
    return tokens(await uc.sessions.sign_in(body.username, body.password, client_ip(request)))


@router.post("/refresh", summary="用刷新令牌换取新的访问令牌", response_model=Tokens)
async def refresh(body: Refresh, uc: UseCasesDep) -> Tokens:
    return tokens(await uc.sessions.refresh(body.refresh_token))


@router.post("/signout", summary="退出登录（本会话的令牌立即失效）", status_code=204)
async def signout(caller: CallerDep, uc: UseCasesDep) -> Response:
    await uc.sessions.sign_out(caller)
    return Response(status_code=204)


@router.get("/me", summary="当前账号", response_model=Account)
async def me(caller: CallerDep) -> Account:
    return caller.account


@router.post("/password", summary="修改本人密码（所有会话随即失效，须重新登录）", status_code=204)
async def change_password(body: PasswordChange, caller: CallerDep, uc: UseCasesDep) -> Response:
    await uc.sessions.change_password(caller, body.old_password, body.new_password)
    return Response(status_code=204)
