"""Scope decisions the gateway takes on its own, no I/O: the shared rule on a unit's path, and what a volunteer's
write may name."""

from __future__ import annotations

import json
from typing import Any

from shared.identity import Identity
from shared.scope import covers as covers_path

from .errors import DENIED, GatewayError

Doc = dict[str, Any]


def covers(identity: Identity, unit_id: str, unit: Doc | None) -> bool:
    """May ``identity`` reach unit ``unit_id`` (whose copy is ``unit``, None when unknown)? The shared rule
    (:func:`shared.scope.covers`) on the unit's path; an unknown unit is only a unit admin's own."""
    path = [*((unit or {}).get("ancestors") or []), unit_id]
    return covers_path(identity, path)


def json_body(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, None when it is none (the service answers with its own validation problem)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def check_body_volunteer(identity: Identity, body: bytes) -> None:
    """A volunteer's write naming a volunteer (``volunteer_id``) must name itself."""
    doc = json_body(body) if body.strip() else None
    if doc is not None and doc.get("volunteer_id") not in (None, identity.volunteer_id):
        raise GatewayError(403, "not_yourself", "志愿者只能为本人报名、取消报名或签到签退", DENIED)
