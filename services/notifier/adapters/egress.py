"""Webhook connections that cannot be pointed at the platform's own network.

A subscriber URL names a host; checking the URL when it is registered is not enough, since the name can resolve
(now, or after its owner re-points it) to a loopback or private address. So the delivery client resolves the name
itself, refuses the delivery unless every address is public (or in ``STVS_WEBHOOK_ALLOWED_NETWORKS``), and
connects to one of the addresses it checked — the name is not resolved again by anyone. TLS still verifies the
certificate against the URL's host name (SNI) and the ``Host`` header is the URL's: httpcore connects the socket
through this backend and starts TLS for the origin's name. Redirects are never followed and no proxy from the
environment is used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

from services.notifier.domain.webhooks import Network, refused_reason

Resolver = Callable[[str, int], Awaitable[list[str]]]


class RefusedAddress(httpcore.ConnectError):
    """The subscriber's host resolves to an address deliveries may not go to (the message is Chinese)."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, connects to a checked one."""

    def __init__(self, allowed: list[Network], resolver: Resolver | None = None) -> None:
        self.allowed = allowed
        self.resolver = resolver or system_resolver
        self.inner = httpcore.AnyIOBackend()

    async def checked(self, host: str, port: int) -> list[str]:
        try:
            literal = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
            found = [str(literal)]
        except ValueError:
            try:
                found = await self.resolver(host, port)
            except OSError as exc:
                raise httpcore.ConnectError(f"订阅地址的主机名无法解析：{host}") from exc
        if not found:
            raise httpcore.ConnectError(f"订阅地址的主机名无法解析：{host}")
        for text in found:
            reason = refused_reason(ipaddress.ip_address(text.split("%", 1)[0]), self.allowed)
            if reason is not None:
                raise RefusedAddress(reason)  # one bad address is enough: the name is not to be trusted
        return list(dict.fromkeys(found))

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await self.checked(host, port):
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks do not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def checked_client(
    timeout_s: float, limits: httpx.Limits, allowed: list[Network], resolver: Resolver | None = None
) -> httpx.AsyncClient:
    """An ``httpx`` client whose connections go only to checked public addresses (see the module)."""
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=CheckedBackend(allowed, resolver),
    )
    return httpx.AsyncClient(transport=transport, timeout=timeout_s, follow_redirects=False, trust_env=False)


def refusal(exc: BaseException) -> str | None:
    """The Chinese reason when ``exc`` (as ``httpx`` raised it) is a refused address."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RefusedAddress):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None
