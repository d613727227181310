"""Forwarding ``/api/v1/<resource>/…`` to the service that owns the resource.

One pooled ``httpx.AsyncClient`` per service (instrumented, so the W3C ``traceparent`` travels on), short connect
timeout, retries only for GET/HEAD that could not connect, request and response bodies streamed through (an upload
or a download is never held whole in memory). The caller's identity goes along signed with the internal token;
the services' own problem documents pass through unchanged. The gateway depends only on the first path segment of
each route (the resource), never on the services' exact routes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
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
# Marks a refusal decided by the gateway's scope rules (not by a service), for logs and the scope matrix test.
DENIED = {"X-STVS-Denied-By": "gateway"}


class Upstreams:
    """The pooled clients, one per service."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.clients: dict[str, httpx.AsyncClient] = {}

    def start(self) -> None:
        timeout = httpx.Timeout(
            connect=self.settings.upstream_connect_timeout_s,
            read=self.settings.upstream_read_timeout_s,
            write=self.settings.upstream_read_timeout_s,
            pool=5.0,
        )
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30)
        for service in SERVICES:
            client = httpx.AsyncClient(
                base_url=self.settings.service_url(service), timeout=timeout, limits=limits, follow_redirects=False
            )
            # only what the caller asked for: no Accept-Encoding of our own (the body is relayed raw)
            for name in ("accept-encoding", "user-agent"):
                client.headers.pop(name, None)
            HTTPXClientInstrumentor.instrument_client(client)
            self.clients[service] = client

    async def stop(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        self.clients.clear()

    async def health(self) -> dict[str, str]:
        async def one(service: str) -> tuple[str, str]:
            try:
                r = await self.clients[service].get("/healthz", timeout=2.0)
            except httpx.HTTPError as exc:
                return service, f"unreachable: {type(exc).__name__}"
            return service, "ok" if r.status_code == 200 else f"status {r.status_code}"

        return dict(await asyncio.gather(*(one(s) for s in self.clients)))

    async def verify_certificate(self, number: str) -> dict[str, Any] | None:
        """The reporting service's verification of a certificate number (None: no such certificate).

        Sent without an identity: verifying is public, the service's route needs none.
        """
        path = f"{self.settings.upstream_prefix}/certificates/{quote(number, safe='')}"
        client = self.clients["reporting"]
        for attempt in range(1 + self.settings.upstream_retries):
            try:
                r = await client.get(path, headers={"accept": "application/json"})
                break
            except httpx.ConnectError as exc:
                if attempt >= self.settings.upstream_retries:
                    raise unavailable("reporting") from exc
                await asyncio.sleep(0.1 * 2**attempt)
            except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise unavailable("reporting") from exc
            except httpx.TimeoutException as exc:
                raise Problem(504, "upstream_timeout", f"{SERVICE_NAMES_ZH['reporting']}响应超时，请稍后重试") from exc
            except httpx.HTTPError as exc:
                raise Problem(502, "bad_gateway", f"{SERVICE_NAMES_ZH['reporting']}返回了无效响应，请稍后重试") from exc
        if r.status_code in (404, 422):
            return None
        if r.status_code != 200:
            log.warning("certificate verification answered %s", r.status_code)
            raise Problem(502, "bad_gateway", f"{SERVICE_NAMES_ZH['reporting']}返回了无效响应，请稍后重试")
        found: dict[str, Any] = r.json()
        return found

    async def fetch_json(self, service: str, path: str) -> Any:
        r = await self.clients[service].get(path, timeout=3.0)
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
    """Out of scope: 404 for reads (nothing is revealed), 403 for writes."""
    if method in READS:
        return Problem(404, "not_found", "未找到该资源，或不在本账号的范围内", headers=DENIED)
    return Problem(403, "out_of_scope", "超出本账号的管理范围，无权执行此操作", headers=DENIED)


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
        if not read:
            raise Problem(403, "read_only", "系统账号只能读取数据", headers=DENIED)
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
    unit_ids = [v for k, v in query if k == "unit_id"] + units_named(segments)
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
    if not body.strip():
        return
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return  # the service answers with its own validation problem (and acts for the caller only)
    if isinstance(doc, dict) and doc.get("volunteer_id") not in (None, identity.volunteer_id):
        raise Problem(403, "not_yourself", "志愿者只能为本人报名、取消报名或签到签退", headers=DENIED)


async def check_body_units(tree: UnitTree, identity: Identity, body: bytes) -> None:
    """A unit admin's JSON write naming units (``unit_id``, ``parent_id``, ``unit_ids``) must stay inside its scope."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return  # the service answers with its own validation problem
    if not isinstance(doc, dict):
        return
    named = [doc[f] for f in UNIT_FIELDS if isinstance(doc.get(f), str)]
    if isinstance(doc.get("unit_ids"), list):
        named += [u for u in doc["unit_ids"] if isinstance(u, str)]
    if not await tree.all_in_scope(identity, named):
        raise Problem(403, "out_of_scope", "超出本账号的管理范围，无权执行此操作", headers=DENIED)


def forward_headers(request: Request, identity: Identity, secret: str) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP_REQUEST}
    headers[HEADER] = sign_identity(identity, secret)
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
    client = upstreams.clients[service]
    path = settings.upstream_prefix + "/" + "/".join(quote(s, safe="") for s in path_segments)
    url = httpx.URL(path, query=request.url.query.encode()) if request.url.query else httpx.URL(path)
    headers = forward_headers(request, identity, settings.internal_token.get_secret_value())
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
        content = request.stream()
    attempts = 1 + (settings.upstream_retries if method in RETRYABLE else 0)
    upstream: httpx.Response | None = None
    for attempt in range(attempts):
        req = client.build_request(method, url, headers=headers, content=content)
        try:
            upstream = await client.send(req, stream=True)
            break
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # refused (a service restarting) is retried; a connect timeout already waited long enough
            if attempt + 1 >= attempts or not isinstance(exc, httpx.ConnectError):
                log.warning("%s unreachable: %s", service, type(exc).__name__)
                raise unavailable(service) from exc
            await asyncio.sleep(0.1 * 2**attempt)
        except httpx.TimeoutException as exc:
            raise Problem(504, "upstream_timeout", f"{SERVICE_NAMES_ZH[service]}响应超时，请稍后重试") from exc
        except httpx.HTTPError as exc:
            log.warning("%s failed: %r", service, exc)
            raise Problem(502, "bad_gateway", f"{SERVICE_NAMES_ZH[service]}返回了无效响应，请稍后重试") from exc
    assert upstream is not None
    out_headers = [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in HOP_BY_HOP]
    response = StreamingResponse(
        _relay(upstream, service), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
    )
    response.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out_headers]
    return response


async def _relay(upstream: httpx.Response, service: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:  # the answer started; all we can do is cut it short
        log.warning("%s broke off a response: %r", service, exc)
    finally:
        await upstream.aclose()
