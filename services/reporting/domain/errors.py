"""The refusals of the reporting service, one type per kind; `api/errors.py` maps each to its HTTP problem once."""

from __future__ import annotations


class ReportingError(Exception):
    """A refusal the caller can act on: a stable ``code`` for programs, a Chinese ``detail`` for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class NotFound(ReportingError):
    """Nothing to show: unknown, not arrived yet, or out of the caller's scope (nothing is revealed)."""


class Forbidden(ReportingError):
    """The caller may not do this."""


class Invalid(ReportingError):
    """The request names something that cannot be (a malformed month, a month not begun, no issuing unit)."""


class Conflict(ReportingError):
    """Already done (a report submitted once)."""


class Unavailable(ReportingError):
    """Another service this one needs did not answer."""
