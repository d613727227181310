"""Accounts within the caller's scope: create, list, read, disable or enable, reset a password, rename."""

from __future__ import annotations

from fastapi import APIRouter

from .deps import CallerDep, UseCasesDep
from .schemas import Account, AccountPatch, CreatedAccount, NewAccount

PREFIX = "/api/v1"
router = APIRouter(prefix=f"{PREFIX}/accounts", tags=["账号"])


@router.post("", summary="创建账号（仅限本管理范围）", status_code=201, response_model=CreatedAccount)
async def create(body: NewAccount, caller: CallerDep, uc: UseCasesDep) -> CreatedAccount:
    account, key = await uc.accounts.create(caller, body)
    return CreatedAccount(account=account, api_key=key)


@router.get("", summary="本管理范围内的账号", response_model=list[Account])
async def list_accounts(caller: CallerDep, uc: UseCasesDep) -> list[Account]:
    return await uc.accounts.list(caller)


@router.get("/{account_id}", summary="查看账号", response_model=Account)
async def get_account(account_id: str, caller: CallerDep, uc: UseCasesDep) -> Account:
    return await uc.accounts.get(caller, account_id)


@router.patch("/{account_id}", summary="停用/启用账号、重设密码、修改显示名", response_model=Account)
async def patch_account(account_id: str, body: AccountPatch, caller: CallerDep, uc: UseCasesDep) -> Account:
    return await uc.accounts.patch(caller, account_id, body)
