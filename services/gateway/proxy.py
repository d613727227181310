"""Forwarding ``/api/v1/<resource>/…`` to the service that owns the resource.

One pooled ``httpx.AsyncClient`` per replica of each service (instrumented, so the W3C ``traceparent`` travels on),
short connect timeout. A service may run as several replicas (``STVS_<SERVICE>_URL`` lists their base URLs): each
request goes to the least busy one (round-robin among equals), and when a replica refuses the connection or cannot
be connected to — nothing was sent — the next one is tried, whatever the method; when no replica took it, a GET/HEAD
is tried again after a short pause (a service restarting), a write is not. Request and response bodies stream
through (an upload or a download is never held whole in memory). The caller's identity goes along signed with the
internal token; the services' own problem documents pass through unchanged. The gateway depends only on the first
path segment of each route (the resource), never on the services' exact routes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from starlette.background import BackgroundTask

from services.gateway.scope import UnitTree
from services.gateway.settings import SERVICES, GatewaySettings
from shared.identity import HEADER, Identity, sign_identity
from shared.problems import Problem
from shared.scope import out_of_scope, system_may_read

log = logging.getLogger("stvs.gateway.proxy")

RESOURCES: dict[str, str] = {
    "units": "registry",
    "volunteers": "registry",
    "forms": "registry",
    "activities": "activities",
    "demands": "activities",
    "compliance": "reporting",
    "action-plans": "reporting",
    "monthly-reports": "reporting",
    "exports": "reporting",
    "certificates": "reporting",
    "charts": "reporting",
    "stats": "reporting",
    "subscriptions": "notifier",
    "notifications": "notifier",
    "deadlines": "notifier",
    "obligations": "notifier",
}

SERVICE_NAMES_ZH = {
    "registry": "登记服务",
    "activities": "活动服务",
    "reporting": "统计报表服务",
    "notifier": "通知服务",
}

READS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRYABLE = frozenset({"GET", "HEAD"})
WHOLE_BODY_BYTES = 256 * 1024  # answers up to this size (declared) are relayed whole, larger ones streamed
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
     "transfer-encoding", "upgrade"}
)  # fmt: skip
# Never forwarded upstream: the caller's credentials, a forged identity, and trace headers (re-injected).
DROP_REQUEST = HOP_BY_HOP | {
    "host",
    "authorization",
    "cookie",
    "x-api-key",
    HEADER.lower(),
    "traceparent",
    "tracestate",
}
UNIT_FIELDS = ("unit_id", "parent_id")
UNIT_QUERY = frozenset({"unit_id", "parent_id", "parent", "unit"})  # query parameters naming a unit
# Bodies that are files (the collective forms): streamed on, never parsed by the gateway.
UPLOAD_TYPES = (
    "multipart/form-data",
    "application/octet-stream",
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.ms-excel",
    "text/csv",
)
# Marks a refusal decided by the gateway's scope rules (not by a service), for logs and the scope matrix test.
DENIED = {"X-STVS-Denied-By": "gateway"}


DOWN_FOR_S = 2.0  # a replica that refused a connection is tried last for this long


@dataclass
class Replica:
    """One replica of a service: its base URL, its pooled client, and how busy it is in this gateway."""

    url: str
    client: httpx.AsyncClient
    in_flight: int = 0
    down_until: float = 0.0


class Pool:
    """The replicas of one service, in the order a request should try them."""

    def __init__(self, service: str, replicas: list[Replica]) -> None:
        self.service = service
        self.replicas = replicas
        self._turn = 0

    def order(self) -> list[Replica]:
        """Every replica: those not known to be down first, least busy first, round-robin among equals."""
        n = len(self.replicas)
        self._turn = (self._turn + 1) % n
        turned = self.replicas[self._turn :] + self.replicas[: self._turn]
        now = time.monotonic()
        return sorted(turned, key=lambda r: (r.down_until > now, r.in_flight))  # stable: keeps the turn


class NotConnected(Exception):
    """No replica of a service accepted the connection (nothing was sent)."""

    def __init__(self, service: str, refused_only: bool) -> None:
        super().__init__(service)
        self.refused_only = refused_only


class Upstreams:
    """The pooled clients, one per replica of each service."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.pools: dict[str, Pool] = {}

    def start(self) -> None:
        timeout = httpx.Timeout(
            connect=self.settings.upstream_connect_timeout_s,
            read=self.settings.upstream_read_timeout_s,
            write=self.settings.upstream_read_timeout_s,
            pool=5.0,
        )
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30)
        for service in SERVICES:
            replicas = []
            for url in self.settings.service_urls(service):
                client = httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits, follow_redirects=False)
                # only what the caller asked for: no Accept-Encoding of our own (the body is relayed raw)
                for name in ("accept-encoding", "user-agent"):
                    client.headers.pop(name, None)
                HTTPXClientInstrumentor.instrument_client(client)
                replicas.append(Replica(url, client))
            self.pools[service] = Pool(service, replicas)

    async def stop(self) -> None:
        for pool in self.pools.values():
            for replica in pool.replicas:
                await replica.client.aclose()
        self.pools.clear()

    async def send_once(
        self, service: str, build: Callable[[httpx.AsyncClient], httpx.Request], *, stream: bool = True
    ) -> httpx.Response:
        """Send to one replica of ``service``: the next one when a replica cannot be connected to (nothing was
        sent). Raises :class:`NotConnected` when none could be; any other error (the request went out) as is."""
        refused_only = True
        for replica in self.pools[service].order():
            replica.in_flight += 1
            try:
                response = await replica.client.send(build(replica.client), stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                refused_only = refused_only and isinstance(exc, httpx.ConnectError)
                if not isinstance(exc, httpx.PoolTimeout):
                    replica.down_until = time.monotonic() + DOWN_FOR_S
                log.info("%s replica %s not connected: %s", service, replica.url, type(exc).__name__)
                continue
            finally:
                replica.in_flight -= 1
            replica.down_until = 0.0
            return response
        raise NotConnected(service, refused_only)

    async def send(
        self,
        service: str,
        build: Callable[[httpx.AsyncClient], httpx.Request],
        *,
        retryable: bool,
        stream: bool = True,
    ) -> httpx.Response:
        """:meth:`send_once`, then — for a GET/HEAD when every replica refused the connection (a service
        restarting) — again after a short pause, ``upstream_retries`` times. Errors become problem documents:
        503 (nobody to send to), 504 (a timeout after the request went out), 502 (anything else)."""
        attempts = 1 + (self.settings.upstream_retries if retryable else 0)
        name = SERVICE_NAMES_ZH.get(service, service)
        for attempt in range(attempts):
            try:
                return await self.send_once(service, build, stream=stream)
            except NotConnected as exc:
                # a connect timeout already waited long enough: no second round
                if attempt + 1 >= attempts or not exc.refused_only:
                    log.warning("%s unreachable (no replica accepted the connection)", service)
                    raise unavailable(service) from exc
                await asyncio.sleep(0.1 * 2**attempt)
            except httpx.TimeoutException as exc:
                raise Problem(504, "upstream_timeout", f"{name}响应超时，请稍后重试") from exc
            except httpx.HTTPError as exc:
                log.warning("%s failed: %r", service, exc)
                raise Problem(502, "bad_gateway", f"{name}返回了无效响应，请稍后重试") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def health(self) -> dict[str, str]:
        async def one(replica: Replica) -> str:
            try:
                r = await replica.client.get("/healthz", timeout=2.0)
            except httpx.HTTPError as exc:
                return f"unreachable: {type(exc).__name__}"
            return "ok" if r.status_code == 200 else f"status {r.status_code}"

        async def service(pool: Pool) -> tuple[str, str]:
            states = await asyncio.gather(*(one(r) for r in pool.replicas))
            if len(states) == 1 or all(s == "ok" for s in states):
                return pool.service, states[0]
            ok = sum(s == "ok" for s in states)
            details = "; ".join(f"{r.url} {s}" for r, s in zip(pool.replicas, states, strict=True) if s != "ok")
            summary = f"degraded: {ok}/{len(states)} replicas ok" if ok else "unreachable: every replica"
            return pool.service, f"{summary} ({details})"

        return dict(await asyncio.gather(*(service(p) for p in self.pools.values())))

    async def verify_certificate(self, number: str) -> dict[str, Any] | None:
        """The reporting service's verification of a certificate number (None: no such certificate).

        Sent without an identity: verifying is public, the service's route needs none.
        """
        path = f"{self.settings.upstream_prefix}/certificates/{quote(number, safe='')}"
        r = await self.send(
            "reporting",
            lambda client: client.build_request("GET", path, headers={"accept": "application/json"}),
            retryable=True,
            stream=False,
        )
        if r.status_code in (404, 422):
            return None
        if r.status_code != 200:
            log.warning("certificate verification answered %s", r.status_code)
            raise Problem(502, "bad_gateway", f"{SERVICE_NAMES_ZH['reporting']}返回了无效响应，请稍后重试")
        found: dict[str, Any] = r.json()
        return found

    async def lookup_unit(self, unit_id: str) -> dict[str, Any] | None:
        """The registry's record of a unit (its id, parent, ancestors, status, name, version), None when there is
        none. Asked as the gateway itself (a read-only system identity) when the unit-tree copy does not know an id
        yet: the copy lags the registry's events, a caller must still reach the unit it has just registered."""
        if not unit_id or len(unit_id) > 64 or unit_id in NOT_IDS:
            return None
        path = f"{self.settings.upstream_prefix}/units/{quote(unit_id, safe='')}"
        me = Identity(subject="gateway", role="system")
        secret = self.settings.internal_token.get_secret_value()

        def build(client: httpx.AsyncClient) -> httpx.Request:
            built = client.build_request("GET", path, headers={"accept": "application/json"}, timeout=3.0)
            target = built.url.raw_path.decode("latin-1")
            built.headers[HEADER] = sign_identity(me, secret, service="registry", method="GET", target=target)
            return built

        try:
            r = await self.send_once("registry", build, stream=False)
        except (NotConnected, httpx.HTTPError):
            return None  # the registry is away: the copy's answer (unknown) stands
        if r.status_code != 200:
            return None
        found: dict[str, Any] = r.json()
        if not isinstance(found, dict) or found.get("id") != unit_id:
            return None
        return {"_id": unit_id, **{k: found.get(k) for k in ("parent_id", "ancestors", "status", "name", "version")}}

    async def fetch_json(self, service: str, path: str) -> Any:
        r = await self.send_once(service, lambda client: client.build_request("GET", path, timeout=3.0), stream=False)
        r.raise_for_status()
        return r.json()


def unavailable(service: str) -> Problem:
    return Problem(
        503,
        "service_unavailable",
        f"{SERVICE_NAMES_ZH.get(service, service)}暂时不可用，请稍后重试",
        headers={"Retry-After": "5"},
        service=service,
    )


def target(segments: list[str]) -> tuple[str, list[str], bool]:
    """(service, upstream path segments, is a dead-letter admin route) of a path below /api/v1, or 404."""
    if not segments or any(s in ("", ".", "..") for s in segments):
        raise Problem(404, "not_found", "请求的接口不存在")
    head = segments[0]
    if head in SERVICES and segments[1:3] == ["admin", "dlq"]:
        return head, segments[1:], True
    service = RESOURCES.get(head)
    if service is None:
        raise Problem(404, "not_found", "请求的接口不存在")
    return service, segments, False


def denial(method: str) -> Problem:
    """Out of scope: 404 for reads (nothing is revealed), 403 for writes (the shared rule's answer)."""
    return out_of_scope(method in READS, DENIED)


async def authorize(
    tree: UnitTree,
    identity: Identity,
    method: str,
    segments: list[str],
    query: list[tuple[str, str]],
    dlq: bool,
) -> None:
    """Scope rules the gateway can check from the path and query alone (the services check the rest too)."""
    read = method in READS
    if identity.role == "province_admin":
        return
    if dlq:
        raise Problem(403, "forbidden_role", "仅省级管理员可管理死信", headers=DENIED)
    if identity.role == "system":
        if not read or segments[0] == "certificates":  # issuing a certificate is a GET, but a write
            raise Problem(403, "read_only", "系统账号只能读取数据", headers=DENIED)
        if not system_may_read(segments):
            raise Problem(403, "forbidden_role", "系统账号只能读取组织与统计数据，不能读取个人信息", headers=DENIED)
        return
    if identity.role == "volunteer":
        if not volunteer_may(identity, method, segments, query):
            raise denial(method)
        issuers = [v for k, v in query if k == "unit_id"]
        if issuers and segments[0] == "certificates":
            # a certificate names its issuing unit: only one the volunteer belongs to
            own = await tree.volunteers.find_one({"_id": identity.volunteer_id}) or {}
            if not set(issuers) <= set(own.get("unit_ids") or []):
                raise denial(method)
        return
    if identity.role != "unit_admin":
        raise denial(method)
    unit_ids = [v for k, v in query if k in UNIT_QUERY] + units_named(segments)
    if not await tree.all_in_scope(identity, unit_ids):
        raise denial(method)
    for volunteer_id in volunteers_named(segments):
        known = await tree.volunteers.find_one({"_id": volunteer_id}, {"_id": 1})
        if known is not None and not await tree.volunteer_in_scope(identity, volunteer_id):
            raise denial(method)


def _matches(segments: list[str], *pattern: str) -> bool:
    """``pattern`` against the path: ``*`` is any one segment."""
    return len(segments) == len(pattern) and all(p in ("*", s) for p, s in zip(pattern, segments, strict=True))


# Where a path names a unit (checked against a unit admin's scope): (pattern, index of the unit id).
UNIT_POSITIONS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("units", "*"), 1),
    (("stats", "units", "*"), 2),
    (("monthly-reports", "*"), 1),
    (("action-plans", "*"), 1),
    (("exports", "monthly", "*"), 2),
    (("obligations", "*"), 1),
    (("volunteers", "*", "units", "*"), 3),
)
# Where a path names a volunteer whose data it shows (a volunteer's own record; for unit admins, in scope).
VOLUNTEER_POSITIONS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("volunteers", "*"), 1),
    (("stats", "volunteers", "*"), 2),
    (("certificates", "volunteers", "*"), 2),
)


# Fixed route segments where a unit id could stand (``GET /units/suggest-name``).
NOT_IDS = frozenset({"suggest-name"})


def units_named(segments: list[str]) -> list[str]:
    """Unit ids a path names (a prefix of the path matching a pattern counts: ``/units/u1/subtree`` names u1)."""
    return [segments[i] for p, i in UNIT_POSITIONS if _matches(segments[: len(p)], *p) and segments[i] not in NOT_IDS]


def volunteers_named(segments: list[str]) -> list[str]:
    out = []
    for pattern, i in VOLUNTEER_POSITIONS:
        if _matches(segments[: len(pattern)], *pattern):
            ident = segments[i]
            out.append(ident.removesuffix(".pdf") if pattern[0] == "certificates" else ident)
    return out


def volunteer_may(identity: Identity, method: str, s: list[str], query: list[tuple[str, str]]) -> bool:
    """A volunteer reaches itself, its sign-ups and hours, and the public activity listings; nothing else.

    Bodies that may name a volunteer (sign-up, check-in/out) are checked by :func:`check_body_volunteer`.
    """
    me = identity.volunteer_id
    if not me:
        return False
    read = method in ("GET", "HEAD")
    return (
        # the public listings and an activity's page (with the volunteer's own sign-up)
        (read and (_matches(s, "activities") or _matches(s, "activities", "*")))
        # sign up, cancel its own sign-up, check in / out with the activity's code
        or (method == "POST" and (_matches(s, "activities", "*", "signups")))
        or (method == "DELETE" and _matches(s, "activities", "*", "signups", me))
        or (
            method == "POST"
            and (_matches(s, "activities", "*", "checkin") or _matches(s, "activities", "*", "checkout"))
        )
        # its own profile, joining / leaving a unit
        or (method in ("GET", "HEAD", "PATCH") and _matches(s, "volunteers", me))
        or (method in ("POST", "DELETE") and _matches(s, "volunteers", me, "units", "*"))
        # its hours and its certificate
        or (read and _matches(s, "stats", "volunteers", me))
        or (read and _matches(s, "certificates", "volunteers", f"{me}.pdf"))
        # its inbox
        or (read and _matches(s, "notifications") and all(v == f"volunteer:{me}" for k, v in query if k == "recipient"))
    )


def check_body_volunteer(identity: Identity, body: bytes) -> None:
    """A volunteer's write naming a volunteer (``volunteer_id``) must name itself."""
    doc = json_body(body) if body.strip() else None
    if doc is not None and doc.get("volunteer_id") not in (None, identity.volunteer_id):
        raise Problem(403, "not_yourself", "志愿者只能为本人报名、取消报名或签到签退", headers=DENIED)


def json_body(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, None when it is none (the service answers with its own validation problem)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def is_upload(content_type: str) -> bool:
    """A file upload (streamed on, never parsed here): the services read these bodies as files, not as JSON."""
    return content_type.split(";")[0].strip().lower().startswith(UPLOAD_TYPES)


async def check_body_units(tree: UnitTree, identity: Identity, body: bytes) -> None:
    """A unit admin's write naming units (``unit_id``, ``parent_id``, ``unit_ids``) must stay inside its scope, and
    a volunteer it acts for (``volunteer_id``) must not be one the copy knows outside it. Any body that is not a
    file upload is looked at, whatever its media type says (``Application/JSON``, ``…+json``, none at all)."""
    doc = json_body(body)
    if doc is None:
        return
    named = [doc[f] for f in UNIT_FIELDS if isinstance(doc.get(f), str)]
    if isinstance(doc.get("unit_ids"), list):
        named += [u for u in doc["unit_ids"] if isinstance(u, str)]
    if not await tree.all_in_scope(identity, named):
        raise Problem(403, "out_of_scope", "超出本账号的管理范围，无权执行此操作", headers=DENIED)
    volunteer_id = doc.get("volunteer_id")
    if isinstance(volunteer_id, str):
        known = await tree.volunteers.find_one({"_id": volunteer_id}, {"_id": 1})
        if known is not None and not await tree.volunteer_in_scope(identity, volunteer_id):
            raise Problem(403, "out_of_scope", "超出本账号的管理范围，无权执行此操作", headers=DENIED)


def forward_headers(request: Request) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP_REQUEST}
    client = request.client.host if request.client else ""
    prior = request.headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{prior}, {client}" if prior else client
    headers["x-forwarded-proto"] = request.url.scheme
    headers.setdefault("x-request-id", uuid.uuid4().hex)
    return headers


async def forward(
    request: Request,
    upstreams: Upstreams,
    service: str,
    path_segments: list[str],
    identity: Identity,
    body: bytes | None = None,
) -> Response:
    """Send the request on and stream the answer back."""
    settings = upstreams.settings
    path = settings.upstream_prefix + "/" + "/".join(quote(s, safe="") for s in path_segments)
    url = httpx.URL(path, query=request.url.query.encode()) if request.url.query else httpx.URL(path)
    headers = forward_headers(request)
    method = request.method
    content: bytes | AsyncIterator[bytes] | None
    if body is not None:
        content = body
    elif (
        method in ("GET", "HEAD", "OPTIONS", "DELETE")
        and "content-length" not in headers
        and ("transfer-encoding" not in request.headers)
    ):
        content = None
    else:
        # streamed: a replica that could not be connected to has read none of it, so the next one gets it whole
        content = request.stream()
    secret = settings.internal_token.get_secret_value()

    def build(client: httpx.AsyncClient) -> httpx.Request:
        built = client.build_request(method, url, headers=headers, content=content)
        # signed for every request (an HMAC), bound to this service, this request and the body the gateway holds
        built.headers[HEADER] = sign_identity(
            identity, secret, service=service, method=method, target=built.url.raw_path.decode("latin-1"), body=body
        )
        return built

    upstream = await upstreams.send(service, build, retryable=method in RETRYABLE)
    out_headers = [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in HOP_BY_HOP]
    raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out_headers]
    declared = upstream.headers.get("content-length", "")
    response: Response
    if declared.isdigit() and int(declared) <= WHOLE_BODY_BYTES:
        # A small answer of known length (most of them) is read whole and sent in one piece: no streaming task.
        try:
            whole = b"".join([chunk async for chunk in upstream.aiter_raw()])  # as sent (still encoded)
        except httpx.HTTPError as exc:
            name = SERVICE_NAMES_ZH.get(service, service)
            raise Problem(502, "bad_gateway", f"{name}返回了无效响应，请稍后重试") from exc
        finally:
            await upstream.aclose()
        response = Response(whole, status_code=upstream.status_code)
        response.raw_headers = raw_headers  # the upstream's, its content-length included
        return response
    response = StreamingResponse(
        _relay(upstream, service), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
    )
    response.raw_headers = raw_headers
    return response


async def _relay(upstream: httpx.Response, service: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:  # the answer started; all we can do is cut it short
        log.warning("%s broke off a response: %r", service, exc)
    finally:
        await upstream.aclose()
