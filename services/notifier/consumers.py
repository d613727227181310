"""Every subscriber of the notifier: a typed event in, a use case called.

- ``obligations`` (UNITS, ACTIVITIES, REPORTS): the facts that open and close each unit's obligations, and a
  reviewed report's resubmit obligation with its notices (``Reviews``).
- ``delivery`` (DEADLINES, ACTIVITIES, VOLUNTEERS): who hears what (``notifications``; e-mail queued for the delivery
  worker, volunteers' notices to their in-platform inbox: events carry no volunteer e-mail), and the activity and
  volunteer copies the reminders need.
- ``webhooks`` (every stream): an event to the subscribers that asked for its type.
- ``scope-units`` (UNITS): the unit tree the scope rule reads (``shared.scope``).

Handlers never send: they only log and queue, so a slow SMTP server or subscriber never holds up a partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.contracts import events as ev
from shared.contracts.envelope import Envelope
from shared.service import Service
from shared.unit_paths import attach_unit_paths

from . import domain
from .usecases import Copies, FanOut, Notices, Obligations, Reviews


@dataclass(frozen=True)
class Handlers:
    obligations: Obligations
    notices: Notices
    copies: Copies
    fan_out: FanOut
    reviews: Reviews

    # -- obligations
    async def on_unit(self, env: Envelope[Any]) -> None:
        data: ev.UnitSnapshot = env.data
        # A contact given at registration counts from then; one added later (UnitUpdated) only from the update.
        given = isinstance(data, ev.UnitRegistered) and data.contact is not None
        await self.obligations.record(
            data.unit_id, domain.UnitRegistered(data.unit_id, data.registered_at, given), data
        )
        if isinstance(data, ev.UnitUpdated) and data.contact is not None:
            await self.obligations.record(data.unit_id, domain.ContactPersonGiven(data.unit_id, env.time))

    async def on_action_plan(self, env: Envelope[Any]) -> None:
        data: ev.ActionPlanSubmitted = env.data
        await self.obligations.record(
            data.unit_id, domain.ActionPlanSubmitted(data.unit_id, data.year, data.submitted_at)
        )

    async def on_monthly_report(self, env: Envelope[Any]) -> None:
        data: ev.MonthlyReportSubmitted = env.data
        fact = domain.MonthlyReportSubmitted(data.unit_id, data.month, data.submitted_at)
        await self.obligations.record(data.unit_id, fact)

    async def on_activity_held(self, env: Envelope[Any]) -> None:
        data: ev.ActivityCompleted = env.data
        await self.obligations.record(data.unit_id, domain.ActivityCompleted(data.unit_id, data.starts_at))

    async def on_report_reviewed(self, env: Envelope[Any]) -> None:
        await self.reviews.on_event(env, env.data)

    # -- notices and copies
    async def on_deadline_approaching(self, env: Envelope[Any]) -> None:
        await self.notices.deadline_approaching(env, env.data)

    async def on_deadline_missed(self, env: Envelope[Any]) -> None:
        await self.notices.deadline_missed(env, env.data)

    async def on_activity_published(self, env: Envelope[Any]) -> None:
        await self.copies.activity_published(env.data)

    async def on_signed_up(self, env: Envelope[Any]) -> None:
        data: ev.VolunteerSignedUp = env.data
        await self.copies.signup(data.activity_id, data.volunteer_id, data.status)

    async def on_signup_confirmed(self, env: Envelope[Any]) -> None:
        data: ev.SignUpConfirmed = env.data
        await self.copies.signup(data.activity_id, data.volunteer_id, "confirmed")

    async def on_signup_cancelled(self, env: Envelope[Any]) -> None:
        data: ev.SignUpCancelled = env.data
        await self.copies.signup(data.activity_id, data.volunteer_id, "cancelled")

    async def on_activity_completed(self, env: Envelope[Any]) -> None:
        data: ev.ActivityCompleted = env.data
        await self.copies.activity_status(data.activity_id, "completed")

    async def on_activity_cancelled(self, env: Envelope[Any]) -> None:
        await self.notices.activity_cancelled(env, env.data)

    async def on_volunteer(self, env: Envelope[Any]) -> None:
        await self.copies.volunteer(env.data)

    # -- webhooks
    async def on_any(self, env: Envelope[Any]) -> None:
        await self.fan_out.deliver(env)


def register(service: Service, handlers: Handlers) -> None:
    c = service.consumer("obligations", [ev.UNITS, ev.ACTIVITIES, ev.REPORTS])
    c.on(ev.UnitRegistered, ev.UnitUpdated)(handlers.on_unit)
    c.on(ev.ActionPlanSubmitted)(handlers.on_action_plan)
    c.on(ev.MonthlyReportSubmitted)(handlers.on_monthly_report)
    c.on(ev.ActivityCompleted)(handlers.on_activity_held)
    c.on(ev.ReportAmended, ev.ReportAccepted, ev.ReportReturned)(handlers.on_report_reviewed)

    d = service.consumer("delivery", [ev.DEADLINES, ev.ACTIVITIES, ev.VOLUNTEERS])
    d.on(ev.DeadlineApproaching)(handlers.on_deadline_approaching)
    d.on(ev.DeadlineMissed)(handlers.on_deadline_missed)
    d.on(ev.ActivityPublished)(handlers.on_activity_published)
    d.on(ev.VolunteerSignedUp)(handlers.on_signed_up)
    d.on(ev.SignUpConfirmed)(handlers.on_signup_confirmed)
    d.on(ev.SignUpCancelled)(handlers.on_signup_cancelled)
    d.on(ev.ActivityCompleted)(handlers.on_activity_completed)
    d.on(ev.ActivityCancelled)(handlers.on_activity_cancelled)
    d.on(ev.VolunteerRegistered, ev.VolunteerUpdated)(handlers.on_volunteer)

    w = service.consumer("webhooks", list(ev.STREAMS))
    w.on(*ev.EVENT_TYPES.values())(handlers.on_any)

    attach_unit_paths(service)  # the unit tree the scope rule needs (shared.scope)
