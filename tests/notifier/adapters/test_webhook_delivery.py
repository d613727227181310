"""Webhook delivery against a real HTTP receiver that verifies Standard Webhooks signatures: one signed delivery
per event and subscriber, retries with backoff for a failing receiver, then pause and a notice to its contact."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import httpx
import pytest

from services.notifier.adapters.crypto import SecretCipher
from services.notifier.adapters.mongo import NOTIFICATIONS, SUBSCRIPTIONS
from services.notifier.app import Notifier
from services.notifier.domain import webhooks
from shared.contracts.envelope import parse_envelope
from tests.fixtures import eventually, signing
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
            http = httpx.AsyncClient(
                transport=httpx.ASGITransport(notifier.app), auth=signing(notifier.app), base_url="http://notifier"
            )
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
                # Retried (backed off: a few tries in the pause time, not a storm; the delays themselves are
                # checked in test_webhooks.py, not by the clock here).
                assert 2 <= len(fails) <= 60, len(fails)
                assert all(c[1]["webhook-id"] == event.id for c in fails), "the same message id on every retry"
                for _, h, b, _ in fails:
                    webhooks.verify(bad["secret"], h, b)

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
                    lambda: notes.find_one({"_id": f"{later.id}:subscription:{bad['id']}:webhook", "outcome": "paused"})
                )
                assert "恢复后补发" in skipped["last_error"]
                await asyncio.sleep(0.3)
                assert len([c for c in receiver.calls if c[0] == "/fail"]) == len(fails)
                assert len(oks()) == 2, "one send per event and subscriber"
                ok_notes = [d async for d in notes.find({"recipient": f"subscription:{good['id']}"})]
                assert len(ok_notes) == 2 and all(n["outcome"] == "sent" and n["attempts"] == 1 for n in ok_notes)

                r = await http.post(f"/subscriptions/{bad['id']}/resume", headers=headers())
                assert r.json()["status"] == "active" and r.json()["failing_since"] is None
                r = await http.post("/subscriptions/sub_nope/resume", headers=headers())
                assert r.status_code == 404 and r.json()["detail"] == "未找到该订阅"


async def test_a_timing_out_subscriber_is_paused_and_once_resumed_gets_what_it_missed_in_order(
    infra: Any,
) -> None:
    settings = await notifier_settings(infra, delivery_enabled=True, webhook_pause_after_s=0.5, webhook_timeout_s=1.0)
    notifier = Notifier(settings)
    receiver = Receiver()
    async with receiver.serving(), running(notifier):
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(notifier.app), auth=signing(notifier.app), base_url="http://notifier"
        )
        async with http:
            r = await http.post(
                "/subscriptions",
                json={"url": receiver.url("/flaky"), "event_types": [UNIT_REGISTERED]},
                headers=headers(),
            )
            assert r.status_code == 201, r.text
            sub = r.json()
            notes = notifier.service.db[NOTIFICATIONS]
            # Same unit, so the events keep their order on one partition: that is the order the subscriber is owed.
            events = [unit_registered("u-seq", version=n) for n in range(1, 6)]

            receiver.flaky_status, receiver.flaky_delay_s = 204, 1.5  # answers only after the timeout
            await publish(settings, events[0])  # times out, retried, until the subscriber is paused

            async def paused() -> Any:
                subs = (await http.get("/subscriptions", headers=headers())).json()
                return next((s for s in subs if s["id"] == sub["id"] and s["status"] == "paused"), None)

            assert "未响应" in (await eventually(paused, timeout_s=15))["last_error"]
            assert len(receiver.calls) >= 2 and all(c[1]["webhook-id"] == events[0].id for c in receiver.calls)
            await publish(settings, *events[1:])  # while paused: logged, not sent, not dropped
            for event in events[1:]:
                await eventually(
                    lambda e=event: notes.find_one(
                        {"_id": f"{e.id}:subscription:{sub['id']}:webhook", "outcome": "paused"}
                    )
                )
            failed_calls = len(receiver.calls)
            await asyncio.sleep(0.3)
            assert len(receiver.calls) == failed_calls, "nothing is sent to a paused subscriber"

            receiver.flaky_delay_s = 0.0
            r = await http.post(f"/subscriptions/{sub['id']}/resume", headers=headers())
            assert r.status_code == 200 and r.json()["status"] == "active"

            ok = lambda: [c for c in receiver.calls if c[0] == "/flaky"][failed_calls:]  # noqa: E731
            await eventually(lambda: len(ok()) >= len(events))
            await asyncio.sleep(0.5)  # a second send would arrive by now
            delivered = ok()
            assert [c[1]["webhook-id"] for c in delivered] == [e.id for e in events], "each once, in event order"
            for _, hdrs, body, _ in delivered:
                webhooks.verify(sub["secret"], hdrs, body)
                assert parse_envelope(body).id == hdrs["webhook-id"]
            logged = [d async for d in notes.find({"recipient": f"subscription:{sub['id']}"})]
            assert sorted(n["channel"] for n in logged) == ["inbox"] + ["webhook"] * len(events), "+ the pause notice"
            assert all(n["outcome"] in ("sent", "delivered") for n in logged)


async def test_subscriber_secrets_are_encrypted_at_rest_and_plain_ones_keep_working(infra: Any) -> None:
    settings = await notifier_settings(infra, delivery_enabled=True)
    legacy_secret = webhooks.new_secret()
    wanted = [UNIT_REGISTERED]
    receiver = Receiver()
    async with receiver.serving():
        notifier = Notifier(settings)
        subs = notifier.service.db[SUBSCRIPTIONS]
        # A subscription stored before secrets were encrypted, found when the notifier starts.
        legacy = {"_id": "sub_legacy", "url": receiver.url("/ok"), "event_types": wanted, "status": "active"}
        await subs.insert_one({**legacy, "secret": legacy_secret})
        async with running(notifier):
            http = httpx.AsyncClient(
                transport=httpx.ASGITransport(notifier.app), auth=signing(notifier.app), base_url="http://notifier"
            )
            async with http:
                r = await http.post(
                    "/subscriptions", json={"url": receiver.url("/ok"), "event_types": wanted}, headers=headers()
                )
                created = r.json()
                stored = await subs.find_one({"_id": created["id"]})
                assert stored is not None and "secret" not in stored
                assert created["secret"] not in str(stored), "the secret is stored only encrypted"

                # The plain one is encrypted in place at start.
                migrated = await eventually(
                    lambda: subs.find_one({"_id": "sub_legacy", "secret_enc": {"$exists": True}})
                )
                assert "secret" not in migrated and legacy_secret not in str(migrated)

                await publish(settings, unit_registered("u-secret"))
                calls = await eventually(lambda: len(receiver.calls) >= 2 and receiver.calls)
                await asyncio.sleep(0.3)
                assert len(receiver.calls) == 2
                signed_with = []
                for _, hdrs, body, _ in calls:
                    for secret in (legacy_secret, created["secret"]):
                        with contextlib.suppress(webhooks.WebhookVerificationError):
                            webhooks.verify(secret, hdrs, body)
                            signed_with.append(secret)
                assert sorted(signed_with) == sorted([legacy_secret, created["secret"]]), "each with its own secret"

    # Another key cannot read the stored secrets.
    with pytest.raises(ValueError, match="does not decrypt"):
        SecretCipher(os.urandom(32)).reveal(stored)
