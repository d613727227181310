"""The reporting service's refusals (domain errors) as HTTP problems, mapped once."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.reporting.domain.errors import Conflict, Forbidden, Invalid, NotFound, ReportingError, Unavailable
from shared.problems import Problem, problem_response

STATUS: dict[type[ReportingError], int] = {NotFound: 404, Forbidden: 403, Invalid: 422, Conflict: 409, Unavailable: 503}


def problem_of(error: ReportingError) -> Problem:
    status = next((s for kind, s in STATUS.items() if isinstance(error, kind)), 400)
    return Problem(status, error.code, error.detail)


async def _as_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ReportingError)
    return problem_response(problem_of(exc), request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ReportingError, _as_problem)
