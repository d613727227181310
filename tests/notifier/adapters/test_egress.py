"""Webhooks go only to public addresses: a name resolving to loopback or a private address is refused when the
delivery connects (the name is resolved once, every address checked, the checked one connected to), redirects are
not followed. Against a real HTTP receiver with a stand-in resolver, and through a production notifier."""

from __future__ import annotations

import base64
import ipaddress
import os
from typing import Any

import httpx
import pytest

from services.notifier.adapters.egress import checked_client, refusal
from services.notifier.adapters.mongo import NOTIFICATIONS
from services.notifier.app import Notifier
from tests.fixtures import eventually, signing
from tests.notifier.support import Receiver, headers, notifier_settings, publish, running, unit_registered

UNIT_REGISTERED = "stvs.unit.registered.v1"
LIMITS = httpx.Limits(max_connections=4)
LOOPBACK = [ipaddress.ip_network("127.0.0.1/32")]


class Resolver:
    """A stand-in DNS: each name to the addresses the test gives it; counts the look-ups."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError("no such name")
        return self.names[host]


@pytest.mark.parametrize(
    ("addresses", "words"),
    [
        (["127.0.0.1"], "本机"),
        (["::1"], "本机"),
        (["10.1.2.3"], "内网"),
        (["93.184.216.34", "192.168.1.9"], "内网"),  # every address is checked, not only the first
        (["::ffff:127.0.0.1"], "本机"),
    ],
)
async def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(
    addresses: list[str], words: str
) -> None:
    receiver = Receiver()
    resolver = Resolver({"hooks.example.org": addresses})
    async with receiver.serving(), checked_client(5, LIMITS, [], resolver) as client:
        with pytest.raises(httpx.ConnectError) as refused:
            await client.post(f"http://hooks.example.org:{receiver.port}/ok", content=b"{}")
    reason = refusal(refused.value)
    assert reason is not None and words in reason and "拒绝投递" in reason
    assert receiver.calls == []


async def test_localhost_by_the_system_resolver_and_a_literal_loopback_are_refused() -> None:
    receiver = Receiver()
    async with receiver.serving(), checked_client(5, LIMITS, []) as client:
        for url in (receiver.url("/ok").replace("127.0.0.1", "localhost"), receiver.url("/ok")):
            with pytest.raises(httpx.ConnectError) as refused:
                await client.post(url, content=b"{}")
            assert "本机" in (refusal(refused.value) or ""), url
    assert receiver.calls == []


async def test_the_checked_address_is_connected_to_with_the_host_kept_and_redirects_not_followed() -> None:
    receiver = Receiver()
    resolver = Resolver({"hooks.example.org": ["127.0.0.1"]})
    async with receiver.serving(), checked_client(5, LIMITS, LOOPBACK, resolver) as client:
        ok = await client.post(f"http://hooks.example.org:{receiver.port}/ok", content=b"{}")
        assert ok.status_code == 204
        moved = await client.post(f"http://hooks.example.org:{receiver.port}/moved", content=b"{}")
        assert moved.status_code == 307, "a redirect is an answer, not followed"
    assert [c[0] for c in receiver.calls] == ["/ok", "/moved"]
    assert receiver.calls[0][1]["host"] == f"hooks.example.org:{receiver.port}"
    assert resolver.asked == ["hooks.example.org"], "resolved once (the connection is kept), by the checker only"


async def test_a_production_notifier_does_not_deliver_to_a_name_that_resolves_to_loopback(infra: Any) -> None:
    settings = await notifier_settings(
        infra,
        delivery_enabled=True,
        production=True,
        internal_token="prod-internal-token-for-tests-0123456789abcdef",
        webhook_secret_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        webhook_pause_after_s=3600,
    )
    notifier = Notifier(settings)
    notifier.webhook_client.resolver = Resolver({"hooks.example.org": ["127.0.0.1"]})
    receiver = Receiver()
    async with receiver.serving(), running(notifier):
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(notifier.app), auth=signing(notifier.app), base_url="http://notifier"
        )
        async with http:
            r = await http.post(
                "/subscriptions",
                json={"url": f"http://hooks.example.org:{receiver.port}/ok", "event_types": [UNIT_REGISTERED]},
                headers=headers(),
            )
            assert r.status_code == 201, "the name itself looks public when subscribing"
            sub = r.json()
            await publish(settings, unit_registered("u-egress"))
            notes = notifier.service.db[NOTIFICATIONS]
            note = await eventually(
                lambda: notes.find_one({"recipient": f"subscription:{sub['id']}", "attempts": {"$gte": 1}})
            )
            assert "本机" in note["last_error"] and note["outcome"] != "sent"
    assert receiver.calls == []
