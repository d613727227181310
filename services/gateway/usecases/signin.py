"""Sign-in, refresh, sign-out, a password change, and who is calling (a bearer token or a system's API key).

Every sign-in limit is checked before the password is hashed (each hash costs tens of milliseconds of CPU); the
limits are counted in the database, so every gateway replica counts against the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.gateway.domain.accounts import Account, AccountPatch
from services.gateway.domain.errors import GatewayError, throttled, unauthorized
from services.gateway.domain.sessions import decode_access_token, issue_access_token
from services.gateway.settings import GatewaySettings
from shared.identity import Identity

from .ports import Accounts, Doc, Limiter, Passwords


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: the account, its identity, and the session (None for API keys)."""

    account: Account
    identity: Identity
    session_id: str | None


@dataclass(frozen=True)
class SignedIn:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    account: Account


@dataclass(frozen=True)
class SigninLimits:
    per_user: Limiter  # per (username, address)
    per_address: Limiter
    total: Limiter


async def throttle(limiter: Limiter, key: str, what: str, action: str) -> None:
    """Refused (429, Retry-After) once ``key`` has used up its rate."""
    wait = await limiter.hit(key)
    if wait:
        raise throttled(what, action, wait)


class Sessions:
    def __init__(
        self, accounts: Accounts, passwords: Passwords, limits: SigninLimits, settings: GatewaySettings
    ) -> None:
        self.accounts = accounts
        self.passwords = passwords
        self.limits = limits
        self.settings = settings

    async def sign_in(self, username: str, password: str, address: str) -> SignedIn:
        await throttle(self.limits.per_user, f"{username.lower()}|{address}", "signin", "登录尝试")
        await throttle(self.limits.per_address, address, "signin", "本地址的登录尝试")
        await throttle(self.limits.total, "all", "signin", "登录请求")
        doc = await self.accounts.by_username(username)
        if not await self.passwords.verify((doc or {}).get("password_hash"), password) or doc is None:
            raise GatewayError(401, "bad_credentials", "用户名或密码错误")
        if doc.get("disabled"):
            raise GatewayError(403, "account_disabled", "账号已停用，请联系管理员")
        sid, refresh = await self.accounts.open_session(doc, self.settings.refresh_ttl_s)
        return self._signed_in(doc, sid, refresh)

    async def refresh(self, refresh_token: str) -> SignedIn:
        doc, sid, token = await self.accounts.rotate_session(refresh_token, self.settings.refresh_ttl_s)
        return self._signed_in(doc, sid, token)

    def _signed_in(self, doc: Doc, sid: str, refresh: str) -> SignedIn:
        return SignedIn(
            access_token=issue_access_token(self.settings, doc, sid),
            expires_in=self.settings.access_ttl_s,
            refresh_token=refresh,
            refresh_expires_in=self.settings.refresh_ttl_s,
            account=Account.of(doc),
        )

    async def sign_out(self, caller: Caller) -> None:
        if caller.session_id:
            await self.accounts.close_session(caller.account.id, caller.session_id)

    async def change_password(self, caller: Caller, old: str, new: str) -> None:
        doc = await self.accounts.get(caller.account.id)
        if caller.session_id is None or doc is None:
            raise GatewayError(403, "password_not_allowed", "系统账号使用 API 密钥，不设密码")
        if not await self.passwords.verify(doc.get("password_hash"), old):
            raise GatewayError(422, "bad_old_password", "原密码不正确")
        await self.accounts.patch(caller.account.id, AccountPatch(password=new))

    async def caller(self, api_key: str | None, authorization: str) -> Caller:
        """Who is calling: a system by its API key, anyone else by a bearer access token of a live session."""
        if api_key:
            found = await self.accounts.by_api_key(api_key)
            if found is None or found.get("disabled") or found["role"] != "system":
                raise unauthorized("invalid_api_key", "API 密钥无效或已停用")
            account = Account.of(found)
            return Caller(account, account.identity(), None)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("not_signed_in", "请先登录")
        claims = decode_access_token(self.settings, token.strip())
        doc = await self.accounts.for_session(str(claims["sub"]), str(claims["sid"]))
        if doc is None or doc.get("disabled"):
            raise unauthorized("account_disabled", "账号已停用或不存在")
        if doc.get("token_version") != claims["ver"] or claims["sid"] not in (doc.get("sessions") or {}):
            raise unauthorized("session_ended", "登录已失效，请重新登录")
        account = Account.of(doc)
        return Caller(account, account.identity(), str(claims["sid"]))
