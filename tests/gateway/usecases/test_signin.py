"""Sign-in and who is calling, on in-memory ports: the limits are checked before any password is hashed; a disabled
account is refused; a system is known by its API key, anyone else by a bearer token of a live session."""

from __future__ import annotations

from typing import Any

import pytest

from services.gateway.domain.accounts import Account, AccountPatch, NewAccount
from services.gateway.domain.errors import GatewayError
from services.gateway.settings import GatewaySettings
from services.gateway.usecases import AccountAdmin, Sessions, SigninLimits
from services.gateway.usecases.signin import Caller
from shared.identity import Identity
from tests.gateway.usecases.memory import CountingPasswords, MemoryAccounts, MemoryLimiter, MemoryTree

SETTINGS = GatewaySettings()


def sessions(accounts: MemoryAccounts, passwords: CountingPasswords, per_address: int = 100) -> Sessions:
    limits = SigninLimits(MemoryLimiter(100), MemoryLimiter(per_address), MemoryLimiter(1000))
    return Sessions(accounts, passwords, limits, SETTINGS)


async def test_a_sign_in_issues_tokens_that_identify_the_caller() -> None:
    accounts, passwords = MemoryAccounts(), CountingPasswords()
    accounts.add("c1admin", "unit_admin", unit_id="C1")
    s = sessions(accounts, passwords)
    signed_in = await s.sign_in("C1Admin", "password-1", "192.0.2.1")
    caller = await s.caller(None, f"Bearer {signed_in.access_token}")
    assert (caller.identity.role, caller.identity.unit_id, caller.account.username) == ("unit_admin", "C1", "c1admin")
    await s.sign_out(caller)
    with pytest.raises(GatewayError) as refused:
        await s.caller(None, f"Bearer {signed_in.access_token}")
    assert (refused.value.status, refused.value.code) == (401, "session_ended")


async def test_the_address_limit_refuses_before_hashing() -> None:
    accounts, passwords = MemoryAccounts(), CountingPasswords()
    s = sessions(accounts, passwords, per_address=3)
    for n in range(3):
        with pytest.raises(GatewayError) as wrong:
            await s.sign_in(f"guess-{n}", "nope", "198.51.100.7")
        assert wrong.value.code == "bad_credentials"
    with pytest.raises(GatewayError) as refused:
        await s.sign_in("guess-new", "nope", "198.51.100.7")
    assert (refused.value.status, refused.value.code) == (429, "signin_rate_limited")
    assert refused.value.headers["Retry-After"] == "13"
    assert passwords.checked == 3, "the refused attempt hashed no password"


async def test_a_disabled_account_cannot_sign_in() -> None:
    accounts = MemoryAccounts()
    accounts.add("gone", "volunteer", volunteer_id="V9", disabled=True)
    with pytest.raises(GatewayError) as refused:
        await sessions(accounts, CountingPasswords()).sign_in("gone", "password-1", "192.0.2.1")
    assert (refused.value.status, refused.value.code) == (403, "account_disabled")


async def test_a_system_is_known_by_its_api_key_only() -> None:
    accounts = MemoryAccounts()
    doc = accounts.add("bi", "system", password=None)
    accounts.keys["stvs_key"] = doc["_id"]
    s = sessions(accounts, CountingPasswords())
    assert (await s.caller("stvs_key", "")).identity.role == "system"
    with pytest.raises(GatewayError) as refused:
        await s.caller("stvs_other", "")
    assert refused.value.code == "invalid_api_key" and refused.value.headers["WWW-Authenticate"].startswith("Bearer")
    with pytest.raises(GatewayError) as anonymous:
        await s.caller(None, "")
    assert anonymous.value.code == "not_signed_in"


async def test_a_unit_admin_manages_accounts_of_its_subtree_only() -> None:
    accounts = MemoryAccounts()
    admin = accounts.add("c1admin", "unit_admin", unit_id="C1")
    caller = Caller(*_who(admin))
    manage = AccountAdmin(accounts, MemoryTree({"P": [], "C1": ["P"], "K1": ["P", "C1"], "C2": ["P"]}))
    await manage.create(caller, NewAccount(username="k1admin", password="password-2", role="unit_admin", unit_id="K1"))
    with pytest.raises(GatewayError) as outside:
        await manage.create(
            caller, NewAccount(username="c2admin", password="password-2", role="unit_admin", unit_id="C2")
        )
    assert (outside.value.status, outside.value.code) == (403, "out_of_scope")
    assert {a.username for a in await manage.list(caller)} == {"c1admin", "k1admin"}
    with pytest.raises(GatewayError) as itself:
        await manage.patch(caller, admin["_id"], AccountPatch(disabled=True))
    assert itself.value.code == "cannot_disable_self"


def _who(doc: dict[str, Any]) -> tuple[Account, Identity, str]:
    account = Account.of(dict(doc))
    return account, account.identity(), "sid"
