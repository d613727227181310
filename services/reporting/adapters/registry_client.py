"""The registry over HTTP: the masked ID number a service-record certificate shows.

ID numbers are never in events, so the projection cannot know them; the certificate asks the registry when it is
issued. The call carries the caller's own identity (signed with the internal token for the registry and this one
request, as the gateway does), so the registry decides by its own rules whether this caller may see this
volunteer: no wider access than asking the registry directly. The registry returns only the masked number
(``id_number_masked``), never the full one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from services.reporting.domain.errors import Forbidden, NotFound, Unavailable
from services.reporting.settings import ReportingSettings
from shared.identity import Identity, SignedIdentity

UNAVAILABLE = "志愿者登记服务暂时无法访问，无法核对身份证号码，证明未出具，请稍后重试"
Transport = Callable[[], httpx.AsyncBaseTransport | None]


class RegistryClient:
    """The :class:`..usecases.ports.Registry` port over HTTP. ``transport`` is asked at each call (None: the network;
    tests put the registry's app there)."""

    def __init__(self, settings: ReportingSettings, transport: Transport = lambda: None) -> None:
        self.settings = settings
        self.transport = transport

    async def masked_id_number(self, identity: Identity, volunteer_id: str) -> str:
        """The volunteer's masked ID number as the registry shows it to ``identity`` (a domain error on failure)."""
        settings = self.settings
        auth = SignedIdentity(settings.internal_token.get_secret_value(), "registry", identity)  # for this request
        transport = self.transport()
        kwargs: dict[str, Any] = {"transport": transport} if transport is not None else {}
        try:
            async with httpx.AsyncClient(
                base_url=settings.registry_url, timeout=settings.registry_timeout_s, auth=auth, **kwargs
            ) as client:
                response = await client.get(f"/volunteers/{quote(volunteer_id, safe='')}")
        except httpx.HTTPError as exc:
            raise Unavailable("registry_unavailable", UNAVAILABLE) from exc
        if response.status_code == 404:
            raise NotFound("volunteer_not_registered", f"志愿者登记服务中未找到志愿者 {volunteer_id}，无法出具证明")
        if response.status_code == 403:
            raise Forbidden("forbidden_volunteer", "无权查看该志愿者的登记信息，不能出具证明")
        if response.status_code != 200:
            raise Unavailable("registry_unavailable", UNAVAILABLE)
        try:
            masked = response.json()["id_number_masked"]
        except (ValueError, KeyError, TypeError) as exc:
            raise Unavailable("registry_unavailable", UNAVAILABLE) from exc
        return str(masked)
