"""What the gateway knows of the services' routes, kept in this one module: which service owns each resource (the
first path segment below /api/v1), where a path names a unit or a volunteer, what a volunteer may call, and which
reads show personal data (for the audit log). Pure rules, no I/O.

Declaring per-route access beside each route in its service (so the gateway holds no copy of the services' routes)
is a later step of issue 15; until then this is the copy.
"""

from __future__ import annotations

import re

from shared.identity import Identity

from .errors import GatewayError

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

SERVICE_NAMES_ZH = {
    "registry": "登记服务",
    "activities": "活动服务",
    "reporting": "统计报表服务",
    "notifier": "通知服务",
}
SERVICES = tuple(SERVICE_NAMES_ZH)

READS = frozenset({"GET", "HEAD", "OPTIONS"})
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

# Reads that show or export personal data (route templates below /api/v1, or a pattern of them).
PERSONAL_READS = (
    re.compile(r"^/api/v1/volunteers/\{[^/]+\}(/.*)?$"),  # a volunteer's record, full ID number requests
    re.compile(r"^/api/v1/forms/\{[^/]+\}/export$"),  # the collective forms with people's details
    re.compile(r"^/api/v1/forms/import-jobs/\{[^/]+\}/marked\.xlsx$"),  # an upload's copy, people's details in it
    re.compile(r"^/api/v1/exports/"),
    re.compile(r"^/api/v1/certificates/volunteers/"),
    re.compile(r"^/api/v1/activities/\{[^/]+\}/(signups|attendance)$"),  # rosters with names
)
FULL_ID_HINT = re.compile(r"id.?number|full|reveal|unmask", re.IGNORECASE)


def target(segments: list[str]) -> tuple[str, list[str], bool]:
    """(service, upstream path segments, is a dead-letter admin route) of a path below /api/v1, or 404."""
    if not segments or any(s in ("", ".", "..") for s in segments):
        raise GatewayError(404, "not_found", "请求的接口不存在")
    head = segments[0]
    if head in SERVICES and segments[1:3] == ["admin", "dlq"]:
        return head, segments[1:], True
    service = RESOURCES.get(head)
    if service is None:
        raise GatewayError(404, "not_found", "请求的接口不存在")
    return service, segments, False


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


def is_upload(content_type: str) -> bool:
    """A file upload (streamed on, never parsed here): the services read these bodies as files, not as JSON."""
    return content_type.split(";")[0].strip().lower().startswith(UPLOAD_TYPES)
