"""The notifier's refusals (``domain.errors``, ``domain.webhooks.SubscriberUrlError``) as problems, once."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.notifier.domain.errors import (
    NotifierError,
    OutOfScope,
    PersonalDataRefused,
    SubscriptionNotFound,
    UnitNotFound,
    UnknownEventTypes,
)
from services.notifier.domain.webhooks import SubscriberUrlError
from shared.problems import Problem, out_of_scope, problem_response


def problem(exc: Exception) -> Problem:
    match exc:
        case UnknownEventTypes(types=types):
            errors = [
                {"field": "event_types", "message": f"未知的事件类型：{t}", "type": "unknown_event_type"} for t in types
            ]
            return Problem(422, "unknown_event_type", str(exc), errors=errors)
        case SubscriberUrlError():
            errors = [{"field": "url", "message": str(exc), "type": "url"}]
            return Problem(422, "bad_subscriber_url", str(exc), errors=errors)
        case SubscriptionNotFound():
            return Problem(404, "subscription_not_found", str(exc))
        case UnitNotFound():
            return Problem(404, "unit_not_found", str(exc))
        case PersonalDataRefused():
            return Problem(403, "forbidden_role", str(exc))
        case OutOfScope():
            return out_of_scope(read=True)
    raise exc


def install(app: FastAPI) -> None:
    """Answer the notifier's refusals as problem documents."""

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(problem(exc), request.url.path)

    app.add_exception_handler(NotifierError, refused)
    app.add_exception_handler(SubscriberUrlError, refused)
