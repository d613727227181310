"""What the gateway's routes depend on: the use cases the composition root put on the app
(``app.state.usecases``), who is calling (``CallerDep``) and from which address."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.adapters.openapi import OpenApiDocs
from services.gateway.adapters.upstream import Upstreams
from services.gateway.domain.clients import forwarded_client
from services.gateway.usecases import Access, AccountAdmin, Audit, Caller, Certificates, Sessions
from shared.service import Service


@dataclass(frozen=True)
class RouteUseCases:
    """The use cases, and what forwarding and the operators' routes use: the upstream clients, the merged OpenAPI
    document, the service (readiness)."""

    service: Service
    upstreams: Upstreams
    docs: OpenApiDocs
    sessions: Sessions
    accounts: AccountAdmin
    access: Access
    audit: Audit
    certificates: Certificates
    trusted_proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network]


def usecases(request: Request) -> RouteUseCases:
    found: RouteUseCases = request.app.state.usecases
    return found


# Documentation only (auto_error off: a missing or wrong token is the use case's 401 problem): every route that
# authenticates its caller shows the bearer scheme in the OpenAPI document, so Swagger's "Authorize" sends the token.
BEARER = HTTPBearer(auto_error=False, scheme_name="bearer", description="登录所得的访问令牌")


async def authenticate(
    request: Request, _token: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None
) -> Caller:
    caller = await usecases(request).sessions.caller(
        request.headers.get("x-api-key"), request.headers.get("authorization", "")
    )
    request.state.caller = caller  # for the audit log
    return caller


def client_ip(request: Request) -> str:
    """The client's address as far as the configured proxies (``STVS_TRUSTED_PROXIES``) can vouch for it."""
    peer = request.client.host if request.client else "unknown"
    return forwarded_client(peer, request.headers.getlist("x-forwarded-for"), usecases(request).trusted_proxies)


CallerDep = Annotated[Caller, Depends(authenticate)]
UseCasesDep = Annotated[RouteUseCases, Depends(usecases)]
