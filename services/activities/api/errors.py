"""Domain refusals become RFC 9457 problems in one place (Chinese message, stable code)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.activities.domain import (
    ActivityError,
    ActivityNotFound,
    ActivityValidationError,
    AtForAdmins,
    CancelReasonRequired,
    CheckInCodeMismatch,
    CheckInRefused,
    DemandNotFound,
    ForbiddenRole,
    InvalidCorrection,
    MissingField,
    NotUnitAdmin,
    NotYourself,
    NoVolunteer,
    SignUpNotFound,
    SignUpRefused,
    VolunteerInactive,
    VolunteerOutOfScope,
    VolunteerUnknown,
)
from shared.problems import Problem, problem_response

_STATUS_OF: list[tuple[type[ActivityError], int]] = [
    (ActivityValidationError, 422),
    (VolunteerUnknown, 422),
    (VolunteerInactive, 422),
    (SignUpRefused, 409),
    (CheckInCodeMismatch, 403),
    (CheckInRefused, 409),
    (InvalidCorrection, 422),
    (CancelReasonRequired, 422),
    (MissingField, 422),
    (ActivityNotFound, 404),
    (DemandNotFound, 404),
    (SignUpNotFound, 404),
    (NotUnitAdmin, 403),
    (VolunteerOutOfScope, 403),
    (NoVolunteer, 403),
    (NotYourself, 403),
    (ForbiddenRole, 403),
    (AtForAdmins, 403),
]


def problem_of(error: ActivityError) -> Problem:
    """The one mapping of domain refusals to problem details; anything not listed is a conflict (409)."""
    status = next((s for cls, s in _STATUS_OF if isinstance(error, cls)), 409)
    errors = None
    if isinstance(error, ActivityValidationError):
        errors = [{"field": v.field, "message": v.message} for v in error.violations]
    elif isinstance(error, MissingField):
        errors = [{"field": error.field}]
    return Problem(status, error.code, error.message, errors=errors)


def install_activity_errors(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ActivityError)
        return problem_response(problem_of(exc), request.url.path)

    app.add_exception_handler(ActivityError, handle)
