"""The HTTP API of the activities service: one router per resource, each route calling one use case."""

from __future__ import annotations

from fastapi import APIRouter

from . import activities, attendance, demands, signups


def router() -> APIRouter:
    """Every route of the service, in the order the API document lists them."""
    found = APIRouter()
    for module in (activities, signups, attendance, demands):
        found.include_router(module.router)
    return found
