"""HTTP API of the gateway: sign-in, accounts, the audit log, public certificate checks, the gateway's dead letters,
the proxy below /api/v1 (last: it takes every other path there), and the operators' routes (``ops``: one OpenAPI
document, readiness)."""

from fastapi import APIRouter

from . import accounts, audit, auth, ops, proxy, public

ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    accounts.router,
    ops.dead_letters,
    public.router,
    audit.router,
    proxy.router,
)
FIRST: tuple[APIRouter, ...] = (ops.router,)

__all__ = ["FIRST", "ROUTERS"]
