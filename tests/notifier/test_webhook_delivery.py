"""Webhook delivery against a real HTTP receiver that verifies Standard Webhooks signatures: one signed delivery
per event and subscriber, retries with backoff for a failing receiver, then pause and a notice to its contact."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx

from services.notifier import webhooks
from services.notifier.app import Notifier
from services.notifier.store import NOTIFICATIONS
from shared.contracts.envelope import parse_envelope
from tests.fixtures import eventually
from tests.notifier.support import (
    Receiver,
    free_port,
    headers,
    notifier_settings,
    publish,
    running,
    smtp_server,
    unit_registered,
)

pytest_plugins = ["tests.fixtures"]

UNIT_REGISTERED = "stvs.unit.registered.v1"


async def test_signed_delivery_once_and_a_failing_subscriber_is_retried_then_paused(infra: Any) -> None:
    smtp_port = free_port()
    settings = await notifier_settings(
        infra, smtp_port=smtp_port, delivery_enabled=True, webhook_pause_after_s=1.0, webhook_timeout_s=1.0
    )
    notifier = Notifier(settings)
    receiver = Receiver()
    with smtp_server(smtp_port) as mail:
        async with receiver.serving(), running(notifier):
            http = httpx.AsyncClient(transport=httpx.ASGITransport(notifier.app), base_url="http://notifier")
            async with http:
                r = await http.post(
                    "/subscriptions",
                    json={"url": receiver.url("/ok"), "event_types": [UNIT_REGISTERED]},
                    headers=headers(),
                )
                assert r.status_code == 201, r.text
                good = r.json()
                r = await http.post(
                    "/subscriptions",
                    json={
                        "url": receiver.url("/fail"),
                        "event_types": [UNIT_REGISTERED],
                        "contact_email": "ops@subscriber.example.org",
                    },
                    headers=headers(),
                )
                bad = r.json()

                event = unit_registered("u9")
                await publish(settings, event, event)  # delivered twice by Kafka: one webhook send

                oks = lambda: [c for c in receiver.calls if c[0] == "/ok"]  # noqa: E731
                await eventually(oks)
                _, hdrs, body, _ = oks()[0]
                webhooks.verify(good["secret"], hdrs, body)  # raises unless the signature and timestamp verify
                assert hdrs["webhook-id"] == event.id and parse_envelope(body).id == event.id
                try:
                    webhooks.verify(bad["secret"], hdrs, body)
                    raise AssertionError("another subscriber's secret must not verify")
                except webhooks.WebhookVerificationError:
                    pass

                # The failing receiver: retried with backoff, paused after webhook_pause_after_s, contact told.
                async def paused() -> Any:
                    subs = (await http.get("/subscriptions", headers=headers())).json()
                    return next((s for s in subs if s["id"] == bad["id"] and s["status"] == "paused"), None)

                sub = await eventually(paused, timeout_s=15)
                assert "HTTP 500" in sub["last_error"]
                fails = [c for c in receiver.calls if c[0] == "/fail"]
                assert 2 <= len(fails) <= 60, len(fails)
                assert all(c[1]["webhook-id"] == event.id for c in fails), "the same message id on every retry"
                for _, h, b, _ in fails:
                    webhooks.verify(bad["secret"], h, b)
                gaps = [b[3] - a[3] for a, b in itertools.pairwise(fails)]
                assert all(g <= settings.delivery_backoff_cap_s + 0.5 for g in gaps), gaps

                notes = notifier.service.db[NOTIFICATIONS]
                note = await eventually(
                    lambda: notes.find_one(
                        {"recipient": f"subscription:{bad['id']}", "channel": "webhook", "outcome": "paused"}
                    )
                )
                assert note["attempts"] == len([c for c in receiver.calls if c[0] == "/fail"])

                told = await eventually(lambda: [m for m in mail.messages if m["To"] == "ops@subscriber.example.org"])
                assert "Webhook 订阅已暂停" in told[0]["Subject"] and receiver.url("/fail") in told[0].get_content()

                # While paused: logged as not delivered, never sent; the healthy subscriber still gets it.
                later = unit_registered("u10")
                await publish(settings, later)
                await eventually(lambda: len(oks()) == 2)
                skipped = await eventually(
                    lambda: notes.find_one({"_id": f"{later.id}:subscription:{bad['id']}:webhook"})
                )
                assert skipped["outcome"] == "paused"
                await asyncio.sleep(0.3)
                assert len([c for c in receiver.calls if c[0] == "/fail"]) == len(fails)
                assert len(oks()) == 2, "one send per event and subscriber"
                ok_notes = [d async for d in notes.find({"recipient": f"subscription:{good['id']}"})]
                assert len(ok_notes) == 2 and all(n["outcome"] == "sent" and n["attempts"] == 1 for n in ok_notes)

                r = await http.post(f"/subscriptions/{bad['id']}/resume", headers=headers())
                assert r.json()["status"] == "active" and r.json()["failing_since"] is None
