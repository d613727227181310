"""The gateway's refusals, as values (no web framework here): each is answered once as a problem document
(``api/errors.py``)."""

from __future__ import annotations

from collections.abc import Mapping

DENIED = {"X-STVS-Denied-By": "gateway"}  # marks a refusal of the gateway's scope rules (not a service's)


class GatewayError(Exception):
    """A refusal: HTTP status, machine code, the user-facing (Chinese) detail, headers to send with it."""

    def __init__(self, status: int, code: str, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})


def out_of_scope(read: bool) -> GatewayError:
    """Out of a caller's scope, decided by the gateway: 404 for reads (nothing is revealed), 403 for writes."""
    if read:
        return GatewayError(404, "not_found", "未找到该资源，或不在本账号的范围内", DENIED)
    return GatewayError(403, "out_of_scope", "超出本账号的管理范围，无权执行此操作", DENIED)


def unauthorized(code: str, detail: str) -> GatewayError:
    return GatewayError(401, code, detail, {"WWW-Authenticate": 'Bearer realm="stvs"'})


def throttled(what: str, action: str, wait_s: float) -> GatewayError:
    """A 429 (``<what>_rate_limited``, with Retry-After)."""
    seconds = int(wait_s) + 1
    return GatewayError(
        429, f"{what}_rate_limited", f"{action}过于频繁，请 {seconds} 秒后再试", {"Retry-After": str(seconds)}
    )
