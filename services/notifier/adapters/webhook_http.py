"""Webhook deliveries over HTTP: one pooled ``httpx`` client (keep-alive connections to each subscriber); in
production every address a subscriber's name resolves to is checked first (``egress``), redirects never followed."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from services.notifier.settings import NotifierSettings

from .egress import Resolver, checked_client, refusal


class WebhookClient:
    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self._http: httpx.AsyncClient | None = None
        self.resolver: Resolver | None = None  # how subscriber names are resolved (None: the system's; tests set one)

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            concurrency = self.settings.delivery_concurrency * 2
            limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            if self.settings.production:  # every address the name resolves to is checked, redirects not followed
                allowed = self.settings.allowed_networks()
                self._http = checked_client(self.settings.webhook_timeout_s, limits, allowed, self.resolver)
            else:
                self._http = httpx.AsyncClient(
                    timeout=self.settings.webhook_timeout_s, follow_redirects=False, limits=limits
                )
        return self._http

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> str | None:
        try:
            response = await self.http.post(url, content=body, headers=dict(headers))
        except httpx.TimeoutException:
            return f"订阅方在 {self.settings.webhook_timeout_s:g} 秒内未响应"
        except httpx.HTTPError as exc:
            return refusal(exc) or f"无法连接订阅方：{type(exc).__name__}"
        if not 200 <= response.status_code < 300:
            return f"订阅方返回 HTTP {response.status_code}"
        return None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
