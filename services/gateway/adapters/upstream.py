"""Forwarding ``/api/v1/<resource>/…`` to the service that owns the resource.

One pooled ``httpx.AsyncClient`` per replica of each service (instrumented, so the W3C ``traceparent`` travels on),
short connect timeout. A service may run as several replicas (``STVS_<SERVICE>_URL`` lists their base URLs): each
request goes to the least busy one (round-robin among equals), and when a replica refuses the connection or cannot
be connected to — nothing was sent — the next one is tried, whatever the method; when no replica took it, a GET/HEAD
is tried again after a short pause (a service restarting), a write is not. Request and response bodies stream
through (an upload or a download is never held whole in memory). The caller's identity goes along signed with the
internal token; the services' own problem documents pass through unchanged. Which service declares a path is in
the services' own OpenAPI documents (``adapters/openapi.py``, ``domain/routes.py``).
"""

from __future__ import annotations

import asyncio
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

from services.gateway.domain.routes import SERVICE_NAMES_ZH, SERVICES
from services.gateway.settings import GatewaySettings
from shared.identity import HEADER, Identity, sign_identity
from shared.problems import Problem

log = logging.getLogger("stvs.gateway.proxy")

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
        if not unit_id or len(unit_id) > 64:
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
