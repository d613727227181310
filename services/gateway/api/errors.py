"""The gateway's refusals (``domain.errors.GatewayError``) answered as problem documents, once."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.gateway.domain.errors import GatewayError
from shared.problems import Problem, problem_response


def problem(exc: GatewayError) -> Problem:
    return Problem(exc.status, exc.code, exc.detail, headers=exc.headers or None)


def install(app: FastAPI) -> None:
    async def refused(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GatewayError)
        return problem_response(problem(exc), request.url.path)

    app.add_exception_handler(GatewayError, refused)
