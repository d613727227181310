"""The registry's refusals as problem details (RFC 9457), in one place."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from services.registry.adapters.spreadsheets.layout import FormError
from services.registry.domain.errors import (
    ConflictError,
    DuplicatePersonError,
    FieldError,
    ForbiddenError,
    InvalidTransitionError,
    NamePatternError,
    NotFoundError,
    QuotaExceededError,
    RegistryError,
    RowsInvalidError,
    UnavailableError,
    ValidationFailedError,
)
from shared.problems import Problem, out_of_scope, problem_response


def field_errors(errors: list[FieldError], prefix: str = "") -> list[dict[str, Any]]:
    return [{"field": prefix + e.field, "message": e.message} for e in errors]


def to_problem(exc: RegistryError) -> Problem:
    if isinstance(exc, NamePatternError):
        return Problem(422, exc.code, exc.message, errors=field_errors(exc.errors), suggestion=exc.suggestion)
    if isinstance(exc, ValidationFailedError):
        return Problem(422, exc.code, exc.message, errors=field_errors(exc.errors))
    if isinstance(exc, RowsInvalidError):
        return Problem(422, exc.code, exc.message, errors=exc.errors)
    if isinstance(exc, NotFoundError):
        return Problem(404, exc.code, exc.message)
    if isinstance(exc, DuplicatePersonError):
        return Problem(409, exc.code, exc.message, platform_number=exc.platform_number, unit_names=list(exc.unit_names))
    if isinstance(exc, ConflictError | InvalidTransitionError):
        return Problem(409, exc.code, exc.message)
    if isinstance(exc, ForbiddenError):
        return Problem(403, exc.code, exc.message)
    if isinstance(exc, QuotaExceededError):
        return Problem(429, exc.code, exc.message)
    if isinstance(exc, UnavailableError):
        return Problem(503, exc.code, exc.message)
    return Problem(400, exc.code, exc.message)


async def registry_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RegistryError)
    if isinstance(exc, ForbiddenError) and request.method in ("GET", "HEAD"):
        # a read out of scope reveals nothing, not even that the record exists (shared.scope)
        return problem_response(out_of_scope(read=True), request.url.path)
    return problem_response(to_problem(exc), request.url.path)


def form_problem(error: FormError) -> Problem:
    """A whole uploaded file refused (not a row)."""
    status = {"too_large": 413, "too_many_rows": 413, "not_xlsx": 415}.get(error.kind, 422)
    extra: dict[str, Any] = {}
    if error.missing:
        extra["missing_columns"] = list(error.missing)
    if error.unexpected:
        extra["unexpected_columns"] = list(error.unexpected)
    return Problem(status, f"form_{error.kind}", error.message, **extra)
