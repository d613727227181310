"""The gateway's storage on MongoDB: accounts and their sessions, and the sign-in rate limits; shared by every
gateway replica.

Accounts of people and systems that use the platform, and their sessions.

An account is found by its id (each request), by its lower-cased username (``username_key``, a unique index: two
replicas creating the same name at once get one account and one 409), or by an API key (``api_keys._id`` = SHA-256 of
the key). Sessions live inside the account document, so the one read per request also tells whether the session was
signed out. Every write is one atomic, conditional update — no lock of this process: a refresh token is rotated by a
compare-and-set on its hash, so the same token presented twice (on one replica or two) succeeds once and the second
use ends the session; a password change or a disabled account bumps ``token_version`` and drops every session in the
same write.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.gateway.domain.accounts import Account, AccountPatch, NewAccount, Session, check_binding
from services.gateway.domain.errors import GatewayError
from shared.storage import Doc, Indexes, utcnow

from .passwords import hash_password

ACCOUNTS = "accounts"
NAMES = "account_names"  # usernames of accounts created before ``username_key`` (read only)
API_KEYS = "api_keys"


def indexes() -> Indexes:
    idx = Indexes()
    idx.add(ACCOUNTS, "username", unique=True)
    idx.add(ACCOUNTS, "username_key", unique=True, partial={"username_key": {"$exists": True}})
    idx.add(NAMES, "account_id")
    idx.add(API_KEYS, "account_id")
    return idx


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class AccountStore:
    """Accounts, usernames, API keys and sessions in the gateway's own database."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db
        self.accounts = db[ACCOUNTS]
        self.names = db[NAMES]
        self.api_keys = db[API_KEYS]

    async def get(self, account_id: str) -> Doc | None:
        return await self.accounts.find_one({"_id": account_id})

    async def for_session(self, account_id: str, sid: str) -> Doc | None:
        """What a request's check needs of an account (each request reads it): the account as the API shows it,
        its token version and the one session the token names — not the password hash nor the other sessions."""
        if not sid.isalnum():
            return None
        fields = dict.fromkeys((f for f in Account.model_fields if f != "id"), 1)
        return await self.accounts.find_one({"_id": account_id}, {**fields, "token_version": 1, f"sessions.{sid}": 1})

    async def by_username(self, username: str) -> Doc | None:
        key = username.lower()
        doc = await self.accounts.find_one({"username_key": key})
        if doc is not None:
            return doc
        name = await self.names.find_one({"_id": key})  # an account created before username_key
        return await self.get(name["account_id"]) if name else None

    async def by_api_key(self, key: str) -> Doc | None:
        entry = await self.api_keys.find_one({"_id": sha256(key)})
        return await self.get(entry["account_id"]) if entry else None

    async def create(self, new: NewAccount, *, created_by: str | None) -> tuple[Account, str | None]:
        """Create an account; returns it and, for a system account, its API key (shown once)."""
        check_binding(new)
        taken = GatewayError(409, "username_taken", f"用户名 {new.username} 已被使用")
        key = new.username.lower()
        legacy = await self.names.find_one({"_id": key})
        if legacy is not None and await self.get(legacy["account_id"]) is not None:
            raise taken
        account_id = uuid.uuid4().hex
        doc: Doc = {
            "_id": account_id,
            "username": new.username,
            "username_key": key,
            "role": new.role,
            "unit_id": new.unit_id if new.role == "unit_admin" else None,
            "volunteer_id": new.volunteer_id if new.role == "volunteer" else None,
            "display_name": new.display_name,
            "password_hash": await hash_password(new.password) if new.password else None,
            "disabled": False,
            "token_version": 1,
            "sessions": {},
            "created_at": utcnow(),
            "created_by": created_by,
        }
        try:
            await self.accounts.insert_one(doc)  # the unique username_key decides between concurrent creators
        except DuplicateKeyError:
            raise taken from None
        api_key = None
        if new.role == "system":
            api_key = "stvs_" + secrets.token_urlsafe(32)
            await self.api_keys.insert_one({"_id": sha256(api_key), "account_id": account_id})
        return Account.of(doc), api_key

    async def all(self) -> list[Doc]:
        return [d async for d in self.accounts.find({}, {"password_hash": 0, "sessions": 0}).sort("created_at", 1)]

    async def any_province_admin(self) -> bool:
        return await self.accounts.find_one({"role": "province_admin", "disabled": False}, {"_id": 1}) is not None

    async def patch(self, account_id: str, patch: AccountPatch) -> Account:
        doc = await self.get(account_id)
        if doc is None:
            raise GatewayError(404, "account_not_found", "账号不存在")
        fields: dict[str, Any] = {"updated_at": utcnow()}
        revoke = False
        if patch.display_name is not None:
            fields["display_name"] = patch.display_name
        if patch.password is not None:
            if doc["role"] == "system":  # a role never changes: reading it first decides nothing stale
                raise GatewayError(422, "password_not_allowed", "系统账号使用 API 密钥，不设密码")
            fields["password_hash"] = await hash_password(patch.password)
            revoke = True
        if patch.disabled is not None:
            fields["disabled"] = patch.disabled
            revoke = revoke or patch.disabled
        update: dict[str, Any] = {"$set": fields}
        if revoke:  # every token issued so far stops working at once: same write, whatever happened meanwhile
            fields["sessions"] = {}
            update["$inc"] = {"token_version": 1}
        changed = await self.accounts.find_one_and_update(
            {"_id": account_id}, update, return_document=ReturnDocument.AFTER
        )
        if changed is None:
            raise GatewayError(404, "account_not_found", "账号不存在")
        return Account.of(changed)

    # -- sessions (refresh tokens "<account id>.<session id>.<secret>")
    async def open_session(self, doc: Doc, ttl_s: int) -> tuple[str, str]:
        """A new session of the account ``doc`` (as just read); returns (session id, refresh token).

        Refused (401) when the account's tokens were revoked since it was read (a password change meanwhile)."""
        sid = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        session = Session(
            secret_hash=sha256(secret), expires_at=now + timedelta(seconds=ttl_s), token_version=doc["token_version"]
        )
        stale = [s for s, v in (doc.get("sessions") or {}).items() if v["expires_at"] < now]
        update: dict[str, Any] = {"$set": {f"sessions.{sid}": session.model_dump()}}
        if stale:  # expired sessions go with the next sign-in (unsetting one that is gone changes nothing)
            update["$unset"] = {f"sessions.{s}": "" for s in stale}
        result = await self.accounts.update_one(
            {"_id": doc["_id"], "token_version": doc["token_version"], "disabled": {"$ne": True}}, update
        )
        if not result.matched_count:
            raise GatewayError(401, "bad_credentials", "用户名或密码错误")
        return sid, f"{doc['_id']}.{sid}.{secret}"

    async def rotate_session(self, refresh_token: str, ttl_s: int) -> tuple[Doc, str, str]:
        """Exchange a refresh token for a new one (same session); a reused old token ends the session.

        The exchange is a compare-and-set on the hash of the presented secret: of two uses of one token — at once,
        or one after the other, on one gateway replica or two — one wins and the other finds the hash changed,
        which is a replay: the session ends, so the winner's new token stops working too."""
        bad = GatewayError(401, "invalid_refresh_token", "登录已失效，请重新登录")
        parts = refresh_token.split(".")
        if len(parts) != 3:
            raise bad
        account_id, sid, secret = parts
        doc = await self.get(account_id)
        raw = (doc or {}).get("sessions", {}).get(sid)
        if doc is None or raw is None or doc.get("disabled"):
            raise bad
        session = Session.model_validate(raw)
        if session.token_version != doc["token_version"] or session.expires_at < utcnow():
            await self.close_session(account_id, sid)
            raise bad
        presented = sha256(secret)
        if not secrets.compare_digest(session.secret_hash, presented):
            await self.close_session(account_id, sid)  # an old refresh token came back: stolen or replayed
            raise bad
        new_secret = secrets.token_urlsafe(32)
        session.secret_hash = sha256(new_secret)
        session.expires_at = utcnow() + timedelta(seconds=ttl_s)
        result = await self.accounts.update_one(
            {
                "_id": account_id,
                f"sessions.{sid}.secret_hash": presented,
                "token_version": doc["token_version"],
                "disabled": {"$ne": True},
            },
            {"$set": {f"sessions.{sid}": session.model_dump()}},
        )
        if not result.matched_count:  # the same token was used meanwhile (or the account revoked): a replay
            await self.close_session(account_id, sid)
            raise bad
        doc["sessions"][sid] = session.model_dump()
        return doc, sid, f"{account_id}.{sid}.{new_secret}"

    async def close_session(self, account_id: str, sid: str) -> None:
        await self.accounts.update_one({"_id": account_id}, {"$unset": {f"sessions.{sid}": ""}})


# ---------------------------------------------------------------- rate limits

RATE_LIMITS = "rate_limits"


def rate_limit_indexes() -> Indexes:
    idx = Indexes()
    # A key idle for a whole window is removed by the server itself (TTL on the end of its window).
    idx.add(RATE_LIMITS, "expires_at", expire_after_s=0)
    return idx


class RateLimiter:
    """Sliding-window limit per key (here: username and client IP), kept in the gateway's database, so every
    gateway replica counts against the same limit.

    One document per (limiter, key) holds the times of the attempts allowed within the last window (at most
    ``per_minute`` of them). An attempt first drops the times that left the window, then appends its own only if
    fewer than ``per_minute`` remain — the condition is in the filter of one atomic update, so two replicas
    counting at the same moment cannot both take the last place (the loser's upsert collides with the ``_id``).
    The document expires with its window (TTL index); the key is stored hashed (no username or IP at rest)."""

    def __init__(self, db: AsyncDatabase[Doc], name: str, per_minute: int, window_s: float = 60.0) -> None:
        self.col = db[RATE_LIMITS]
        self.name = name
        self.per_minute = per_minute
        self.window = timedelta(seconds=window_s)

    async def hit(self, key: str) -> float:
        """Count one attempt; returns 0 when allowed, else the seconds until the next one is."""
        doc_id = f"{self.name}:{hashlib.sha256(key.encode()).hexdigest()}"
        now = utcnow()
        await self.col.update_one({"_id": doc_id}, {"$pull": {"hits": {"$lte": now - self.window}}})
        try:
            await self.col.update_one(
                {"_id": doc_id, f"hits.{self.per_minute - 1}": {"$exists": False}},
                {"$push": {"hits": now}, "$set": {"expires_at": now + self.window}},
                upsert=True,
            )
            return 0.0
        except DuplicateKeyError:
            pass  # the window is full
        doc = await self.col.find_one({"_id": doc_id}, {"hits": 1})
        oldest: datetime = min((doc or {}).get("hits") or [now])
        return max((oldest + self.window - now).total_seconds(), 0.1)
