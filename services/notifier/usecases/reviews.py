"""A reviewed report (issue 16 §3): a returned report opens a "resubmit" obligation, announced to the unit at once
and again every ``resubmit_reminder_days`` while it is open (and listed in the province office's digest of units not
resubmitted); an amendment or an acceptance closes it. The office hears of an amendment, the unit of an acceptance.

The notices never carry the office's comment (free text, read on the platform). Each is logged once by id (the
conditional insert of the storage port), so redelivered events and replicas running the same reminder pass send
nothing twice; facts older than the report's last one change nothing (``domain.reviews``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.notifier.domain import templates
from services.notifier.domain.notices import PROVINCE, unit_recipient
from services.notifier.domain.reviews import REPORT_KINDS_ZH, ReportReview, ReviewFact, ReviewStep, review_id
from shared import clock
from shared.contracts import events as ev
from shared.contracts.envelope import Envelope

from .notices import Notices

RESUBMIT_REMINDER = "report_resubmit_reminder"  # the event type logged with a reminder (no event behind it)
RESUBMIT_DIGEST = "resubmit"  # the digest id's prefix: resubmit:<kind>:<period>


def review_fact(data: ev.ReportAmended | ev.ReportAccepted | ev.ReportReturned) -> ReviewFact:
    match data:
        case ev.ReportAmended():
            return ReviewFact(data.unit_id, data.kind, data.period, data.version, ReviewStep.AMENDED, data.amended_at)
        case ev.ReportAccepted():
            step, at = ReviewStep.ACCEPTED, data.accepted_at
        case ev.ReportReturned():
            step, at = ReviewStep.RETURNED, data.returned_at
    return ReviewFact(data.unit_id, data.kind, data.period, data.version, step, at)


def report_title(kind: str, period: str) -> str:
    if kind == "monthly" and len(period) == 7:
        return f"{period[:4]}年{int(period[5:])}月{REPORT_KINDS_ZH[kind]}"
    return f"{period}年{REPORT_KINDS_ZH.get(kind, kind)}"


class Reviews:
    def __init__(self, notices: Notices) -> None:
        self.notices = notices
        self.store = notices.store
        self.every = timedelta(days=notices.settings.resubmit_reminder_days)

    async def record(self, fact: ReviewFact) -> bool:
        """Apply the fact to the report's state; True when it is not older than the state's last fact (then its
        notices are due: a redelivery logs them again by the same ids, which changes nothing)."""
        current_rank: list[int] = []

        def decide(current: ReportReview | None) -> ReportReview | None:
            review = current or ReportReview.start(fact)
            current_rank[:] = [review.rank]
            return review.apply(fact)

        await self.store.change_review(review_id(fact.unit_id, fact.kind, fact.period), decide)
        return bool(current_rank) and fact.rank >= current_rank[0]

    async def on_event(
        self, env: Envelope[Any], data: ev.ReportAmended | ev.ReportAccepted | ev.ReportReturned
    ) -> None:
        fact = review_fact(data)
        if not await self.record(fact):
            return
        match fact.step:
            case ReviewStep.RETURNED:
                await self.tell_unit(env.id, env.type, fact, templates.REPORT_RETURNED, fact.at, reminder=False)
            case ReviewStep.ACCEPTED:
                await self.tell_unit(
                    env.id, env.type, fact, templates.REPORT_ACCEPTED, None, reminder=False, email=False
                )
            case ReviewStep.AMENDED:
                await self.tell_office(env.id, env.type, fact)

    async def tell_unit(
        self,
        event_id: str,
        event_type: str,
        report: ReviewFact | ReportReview,
        template: str,
        returned_at: datetime | None,
        *,
        reminder: bool,
        email: bool = True,
    ) -> bool:
        """An inbox notice to the unit (its admins read it), and the same by e-mail to its contact when it gave one;
        True when one of them was not logged before."""
        unit = await self.store.unit(report.unit_id)
        contact = (unit.contact if unit is not None else None) or {}
        values = {
            "unit_name": (unit.name if unit is not None else None) or report.unit_id,
            "report_title": report_title(report.kind, report.period),
            "version": report.version,
            "returned_at": returned_at,
            "reminder": reminder,
            "platform_url": self.notices.settings.public_url,
        }
        addresses = [None, contact.get("email")] if email else [None]
        logged = False
        for address in dict.fromkeys(addresses):
            logged |= await self.notices.notify(
                None,
                recipient=unit_recipient(report.unit_id),
                unit_id=report.unit_id,
                address=address,
                template=template,
                values=values,
                event_id=event_id,
                event_type=event_type,
                report_kind=report.kind,
                period=report.period,
            )
        return logged

    async def tell_office(self, event_id: str, event_type: str, fact: ReviewFact) -> None:
        await self.notices.notify(
            None,
            recipient=PROVINCE,
            unit_id=fact.unit_id,
            address=None,
            template=templates.REPORT_AMENDED,
            values={
                "unit_name": await self.notices.unit_name(fact.unit_id) or fact.unit_id,
                "report_title": report_title(fact.kind, fact.period),
                "version": fact.version,
            },
            event_id=event_id,
            event_type=event_type,
            report_kind=fact.kind,
            period=fact.period,
        )

    async def remind(self, now: datetime | None = None) -> int:
        """Remind every unit whose returned report is still not submitted again, once per reminder slot (the n-th
        ``resubmit_reminder_days`` since the return), and list it in the office's digest of units not resubmitted
        (sent by :meth:`Notices.flush_digests`). Returns how many reminders this call logged."""
        now = now or clock.now()
        sent = 0
        for review in await self.store.open_reviews():
            slot = review.reminder_slot(now, self.every)
            if slot < 1 or review.returned_at is None:
                continue
            event_id = f"report-resubmit:{review.id}:v{review.version}:{slot}"
            sent += await self.tell_unit(
                event_id, RESUBMIT_REMINDER, review, templates.REPORT_RETURNED, review.returned_at, reminder=True
            )
            await self.list_in_digest(review, review.returned_at + self.every)
        return sent

    async def list_in_digest(self, review: ReportReview, due_at: datetime) -> None:
        name = await self.notices.unit_name(review.unit_id) or review.unit_id
        entry = {"name": name, "event_id": f"report-resubmit:{review.id}", "added_at": clock.now(), "batch": None}
        title = f"{report_title(review.kind, review.period)}（退回后重新提交）"
        digest_id = f"{RESUBMIT_DIGEST}:{review.kind}:{review.period}"
        await self.store.add_to_digest(digest_id, review.unit_id, entry, title, due_at)
