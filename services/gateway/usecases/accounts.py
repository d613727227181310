"""Managing accounts within an admin's scope: a province admin every account, a unit admin the unit admins and
volunteers of its subtree."""

from __future__ import annotations

from services.gateway.domain.accounts import Account, AccountPatch, NewAccount, managed_by
from services.gateway.domain.errors import GatewayError
from shared.identity import Identity

from .ports import Accounts, Doc, UnitTree
from .signin import Caller

NOT_FOUND = ("account_not_found", "账号不存在")


def admin_of(caller: Caller) -> Identity:
    identity = caller.identity
    if identity.role not in ("province_admin", "unit_admin"):
        raise GatewayError(403, "forbidden_role", "只有管理员可以管理账号")
    return identity


class AccountAdmin:
    def __init__(self, accounts: Accounts, tree: UnitTree) -> None:
        self.accounts = accounts
        self.tree = tree

    async def manages(self, identity: Identity, doc: Doc) -> bool:
        match managed_by(identity, doc):
            case "all":
                return True
            case "unit":
                return await self.tree.in_scope(identity, str(doc["unit_id"]))
            case "volunteer":
                return await self.tree.volunteer_in_scope(identity, str(doc["volunteer_id"]))
        return False

    async def create(self, caller: Caller, new: NewAccount) -> tuple[Account, str | None]:
        identity = admin_of(caller)
        bound = {"role": new.role, "unit_id": new.unit_id, "volunteer_id": new.volunteer_id}
        if not await self.manages(identity, bound):
            raise GatewayError(403, "out_of_scope", "只能在本管理范围内创建账号")
        return await self.accounts.create(new, created_by=caller.account.id)

    async def list(self, caller: Caller) -> list[Account]:
        identity = admin_of(caller)
        return [Account.of(d) for d in await self.accounts.all() if await self.manages(identity, d)]

    async def get(self, caller: Caller, account_id: str) -> Account:
        identity = admin_of(caller)
        doc = await self.accounts.get(account_id)
        if doc is None or not await self.manages(identity, doc):
            raise GatewayError(404, *NOT_FOUND)
        return Account.of(doc)

    async def patch(self, caller: Caller, account_id: str, patch: AccountPatch) -> Account:
        identity = admin_of(caller)
        doc = await self.accounts.get(account_id)
        if doc is None:
            raise GatewayError(404, *NOT_FOUND)
        if not await self.manages(identity, doc):
            raise GatewayError(403, "out_of_scope", "超出本账号的管理范围，无权修改该账号")
        if account_id == caller.account.id and patch.disabled:
            raise GatewayError(409, "cannot_disable_self", "不能停用自己的账号")
        return await self.accounts.patch(account_id, patch)
