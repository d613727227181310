"""A tiny stand-in for an internal service, and a helper serving an ASGI app with uvicorn on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import importlib
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from services.gateway.domain.routes import SERVICES
from shared.access import access
from shared.identity import HEADER, read_identity, request_target
from shared.problems import Problem, install_problem_handlers


class Gate:
    """Events the test and the fake service use to prove that bodies stream (no side waits for the whole body)."""

    def __init__(self) -> None:
        self.request_started = asyncio.Event()
        self.response_read = asyncio.Event()
        self.seen: list[dict[str, Any]] = []


class UnitIn(BaseModel):
    name: str
    unit_id: str | None = None


# Units the stand-in registry knows but no event has announced yet: id -> parent (a city below the province P).
JUST_REGISTERED = {"NEW-K9": "C1", "NEW-ELSEWHERE": "C2"}


# Routes of the stand-in that no real service has, with their declarations (a real service declares its own).
EXTRA: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/units/{unit_id}/conflict"): access("unit_admin", "system", units=["path:unit_id"]),
    ("post", "/units/{unit_id}/leaders"): access("unit_admin", units=["path:unit_id"]),
    ("post", "/forms/upload"): access("unit_admin"),
    ("get", "/exports/big"): access("unit_admin", personal=True),
}


@functools.cache
def real_document(service: str) -> dict[str, Any]:
    """The real service's OpenAPI document: the operations it declares, as the gateway reads them."""
    app = importlib.import_module(f"services.{service}.app").create_app()
    document: dict[str, Any] = app.openapi()
    return document


def stand_in_document(service: str) -> dict[str, Any]:
    """What the stand-in for ``service`` declares: the real service's operations and the stand-in's own routes
    below the same first path segments."""
    real = real_document(service)
    heads = {p.strip("/").split("/")[0] for p in real["paths"] if not p.startswith("/admin/")}
    paths = {p: dict(item) for p, item in real["paths"].items()}
    for (method, path), declared in EXTRA.items():
        if path.strip("/").split("/")[0] in heads:
            paths.setdefault(path, {})[method] = {"summary": "stand-in", "responses": {}, **declared}
    return {"openapi": real["openapi"], "info": {"title": f"fake {service}", "version": "0"}, "paths": paths}


def fake_service(secret: str, gate: Gate, service: str) -> FastAPI:
    """A stand-in for ``service``: declares the real service's operations (and a few of its own), answers any."""
    app = FastAPI(title="fake", openapi_url=None)
    install_problem_handlers(app)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return stand_in_document(service)

    def signed(request: Request) -> dict[str, Any] | None:
        """The identity, checked as a real service checks it (this stand-in plays the service of the path)."""
        token = request.headers.get(HEADER)
        if not token:
            return None
        played = service
        target = request_target(request.scope)
        identity, _ = read_identity(token, secret, service=played, method=request.method, target=target)
        return identity.model_dump()

    def who(request: Request) -> dict[str, Any]:
        seen = {
            "identity": signed(request),
            "traceparent": request.headers.get("traceparent"),
            "authorization": request.headers.get("authorization"),
            "path": request.url.path,
            "query": request.url.query,
        }
        gate.seen.append(seen)
        return seen

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/units/{unit_id}", summary="one unit")
    async def get_unit(unit_id: str, request: Request) -> dict[str, Any]:
        if unit_id in JUST_REGISTERED:  # registered a moment ago: the gateway's copy has not heard of it yet
            parent = JUST_REGISTERED[unit_id]
            return {"id": unit_id, "parent_id": parent, "ancestors": ["P", parent], "status": "active",
                    "name": unit_id, "version": 1, **who(request)}  # fmt: skip
        return {"unit_id": unit_id, **who(request)}

    @app.post("/units/{unit_id}/leaders")
    async def add_leader(unit_id: str, request: Request) -> dict[str, Any]:
        return {"unit_id": unit_id, **who(request)}

    @app.post("/units")
    async def create_unit(body: UnitIn, request: Request) -> dict[str, Any]:
        return {"created": body.name, **who(request)}

    @app.get("/units/{unit_id}/conflict")
    async def conflict(unit_id: str) -> dict[str, Any]:
        raise Problem(409, "unit_conflict", "队伍名称已存在")

    @app.get("/volunteers")
    async def volunteers(request: Request, unit_id: str | None = None) -> dict[str, Any]:
        return who(request)

    @app.get("/volunteers/{volunteer_id}")
    async def volunteer(volunteer_id: str, request: Request) -> dict[str, Any]:
        return {"volunteer_id": volunteer_id, **who(request)}

    @app.patch("/volunteers/{volunteer_id}")
    async def patch_volunteer(volunteer_id: str, request: Request) -> dict[str, Any]:
        return {"volunteer_id": volunteer_id, **who(request)}

    @app.get("/activities")
    async def activities(request: Request) -> dict[str, Any]:
        return who(request)

    @app.post("/forms/upload")
    async def upload(request: Request) -> dict[str, Any]:
        """Consumes the body chunk by chunk; tells the test when the first one arrived."""
        digest, total, chunks = hashlib.sha256(), 0, 0
        async for chunk in request.stream():
            if chunk:
                gate.request_started.set()
                digest.update(chunk)
                total += len(chunk)
                chunks += 1
        return {"bytes": total, "sha256": digest.hexdigest(), "chunks": chunks, **who(request)}

    @app.get("/exports/big")
    async def big(size_mb: int = 4, wait: bool = False) -> StreamingResponse:
        """Sends 1 MB, then (``wait``) waits until the test has read it before sending the rest."""

        async def body() -> AsyncIterator[bytes]:
            yield b"x" * (1024 * 1024)
            if wait:
                await asyncio.wait_for(gate.response_read.wait(), 10)
            for _ in range(size_mb - 1):
                yield b"y" * (1024 * 1024)

        return StreamingResponse(
            body(),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": 'attachment; filename="big.xlsx"'},
        )

    @app.get("/certificates/{number}")
    async def verify(number: str, request: Request) -> dict[str, Any]:
        who(request)
        if number != "ZM20260501-0a1b2c3d4e-good":
            raise Problem(404, "certificate_invalid", "证明编号无效：未找到该证明，或编号已被篡改")
        return {
            "valid": True,
            "number": number,
            "platform_number": "HB2026000011",
            "display_name": "张科普",
            "hours": 2.0,
            "activities": 1,
            "star_level": 0,
            "issuing_unit_name": "石家庄市科技志愿者支队",
            "issued_at": "2026-05-01T02:00:00Z",
        }

    @app.get("/admin/dlq")
    async def dlq(stream: str, request: Request) -> JSONResponse:
        return JSONResponse([{"stream": stream, **who(request)}])

    @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def anything(path: str, request: Request) -> dict[str, Any]:
        """Any other route of the real services (the scope matrix only asks whether the gateway let it through)."""
        await request.body()
        return who(request)

    return app


@contextlib.asynccontextmanager
async def fake_services(
    secret: str, gate: Gate, services: Sequence[str] = ("registry", "activities", "reporting")
) -> AsyncIterator[dict[str, str]]:
    """A stand-in per service, each on its own port (one gate for all); yields their base URLs by service."""
    assert set(services) <= set(SERVICES)
    async with contextlib.AsyncExitStack() as stack:
        yield {s: await stack.enter_async_context(serving(fake_service(secret, gate, s))) for s in services}


def free_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextlib.asynccontextmanager
async def serving(app: Any, *, lifespan: str = "off", port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port unless given) in this event loop; yields its base URL."""
    sock = free_socket(port)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, lifespan=lifespan, access_log=False, proxy_headers=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(600):
            if server.started or task.done():
                break
            await asyncio.sleep(0.05)
        if task.done():
            task.result()
        assert server.started, "server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def closed_port() -> int:
    with contextlib.closing(free_socket()) as sock:
        return int(sock.getsockname()[1])
