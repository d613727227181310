"""Sign-in, short-lived access tokens, and who is calling.

An access token is an HS256 JWT carrying the account id, the account's token version and the session id; every
request reads the account by ``_id`` (one fast lookup) and refuses the token when the account is disabled, its
token version moved on (password changed, disabled) or the session was signed out — so that happens at once.
Systems present an API key (``X-API-Key``) instead and are read-only.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.gateway.accounts import Account, AccountStore
from services.gateway.settings import GatewaySettings
from shared.identity import Identity
from shared.problems import Problem
from shared.storage import Doc, Indexes, utcnow

AUDIENCE = "stvs-api"
ISSUER = "stvs-gateway"


def _unauthorized(code: str, detail: str) -> Problem:
    return Problem(401, code, detail, headers={"WWW-Authenticate": 'Bearer realm="stvs"'})


def issue_access_token(settings: GatewaySettings, doc: Doc, sid: str) -> str:
    now = int(time.time())
    claims = {
        "sub": doc["_id"],
        "ver": doc["token_version"],
        "sid": sid,
        "role": doc["role"],
        "iat": now,
        "exp": now + settings.access_ttl_s,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), "HS256")


def decode_access_token(settings: GatewaySettings, token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["sub", "ver", "sid", "exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("token_expired", "登录已过期，请刷新或重新登录") from exc
    except jwt.PyJWTError as exc:
        raise _unauthorized("invalid_token", "访问令牌无效，请重新登录") from exc
    return claims


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: the account, its identity, and the session (None for API keys)."""

    account: Account
    identity: Identity
    session_id: str | None


async def authenticate(request: Request) -> Caller:
    gw = request.app.state.gateway
    settings: GatewaySettings = gw.settings
    store: AccountStore = gw.accounts
    api_key = request.headers.get("x-api-key")
    if api_key:
        doc = await store.by_api_key(api_key)
        if doc is None or doc.get("disabled") or doc["role"] != "system":
            raise _unauthorized("invalid_api_key", "API 密钥无效或已停用")
        account = Account.of(doc)
        system = Caller(account, account.identity(), None)
        request.state.caller = system  # for the audit log
        return system
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("not_signed_in", "请先登录")
    claims = decode_access_token(settings, token.strip())
    doc = await store.for_session(str(claims["sub"]), str(claims["sid"]))
    if doc is None or doc.get("disabled"):
        raise _unauthorized("account_disabled", "账号已停用或不存在")
    if doc.get("token_version") != claims["ver"] or claims["sid"] not in (doc.get("sessions") or {}):
        raise _unauthorized("session_ended", "登录已失效，请重新登录")
    account = Account.of(doc)
    caller = Caller(account, account.identity(), str(claims["sid"]))
    request.state.caller = caller  # for the audit log
    return caller


CallerDep = Annotated[Caller, Depends(authenticate)]


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


Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


def _trusted(address: str, trusted: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def forwarded_client(peer: str, forwarded_for: list[str], trusted: Networks) -> str:
    """The client's address: the peer, unless the peer is a trusted proxy — then the ``X-Forwarded-For`` hops are
    read from the right (the ones our own proxies appended) and the first that is not a trusted proxy is the client.
    A hop that is not an address ends the walk (nothing left of it can be believed)."""
    client = peer
    if not _trusted(peer, trusted):
        return client
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break
        client = hop
        if not _trusted(hop, trusted):
            break
    return client


def client_ip(request: Request) -> str:
    """The client's address as far as the configured proxies (``STVS_TRUSTED_PROXIES``) can vouch for it."""
    peer = request.client.host if request.client else "unknown"
    trusted: Networks = request.app.state.gateway.trusted_proxies
    return forwarded_client(peer, request.headers.getlist("x-forwarded-for"), trusted)
