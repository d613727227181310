"""Reading what the notifier knows: the notification log (each caller its scope's), the campaign calendar, a unit's
obligations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.notifier.domain import CampaignCalendar, Deadline, Obligation, has_passed, reminder_at
from services.notifier.domain.errors import OutOfScope, PersonalDataRefused, UnitNotFound
from services.notifier.settings import NotifierSettings
from shared.identity import Identity

from .ports import Doc, InboxStore, NotificationFilter


@dataclass(frozen=True)
class NotificationPage:
    items: list[Doc]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class UnitStanding:
    """A unit's obligations in one campaign year."""

    unit_id: str
    name: str | None
    calendar: CampaignCalendar
    obligations: list[Obligation]

    @staticmethod
    def late(obligation: Obligation) -> bool:
        closed = obligation.closed_at
        return closed is not None and has_passed(obligation.deadline.due_at, closed)


class Inbox:
    def __init__(self, store: InboxStore, settings: NotifierSettings) -> None:
        self.store = store
        self.settings = settings

    async def notifications(
        self, identity: Identity, where: NotificationFilter, limit: int, offset: int
    ) -> NotificationPage:
        """The log as the caller may read it: a unit admin its unit's and those below it, a volunteer its own."""
        reach = await self.store.reach(identity)
        if identity.role == "system":
            raise PersonalDataRefused
        unit_ids = None
        recipient = where.recipient
        if identity.role == "unit_admin":
            if where.unit is not None and not reach.unit(where.unit):
                raise OutOfScope
            if where.unit is None:
                unit_ids = sorted(reach.units or ())
        elif identity.role == "volunteer":
            own = f"volunteer:{identity.volunteer_id}"
            if recipient is not None and recipient != own:
                raise OutOfScope
            recipient = own
        scoped = NotificationFilter(unit_ids, where.unit, where.channel, where.outcome, recipient)
        items, total = await self.store.notifications(scoped, limit, offset)
        return NotificationPage(items, total, limit, offset)

    def deadlines(self, year: int | None) -> tuple[CampaignCalendar, list[Deadline]]:
        calendar = self.settings.calendar(year)
        return calendar, calendar.deadlines

    def reminders_at(self, calendar: CampaignCalendar, deadline: Deadline) -> list[datetime]:
        return [reminder_at(deadline, o, calendar.reminder_hour) for o in calendar.offsets_days]

    async def obligations(self, identity: Identity, unit_id: str, year: int | None) -> UnitStanding:
        reach = await self.store.reach(identity, system_reads=True)
        if identity.role == "volunteer" or not reach.unit(unit_id):
            raise OutOfScope  # its unit's and those below it (shared.scope); nothing else, not even 403
        unit = await self.store.unit(unit_id)
        if unit is None or unit.obligations.registered_at is None:
            raise UnitNotFound
        calendar = self.settings.calendar(year)
        return UnitStanding(unit_id, unit.name, calendar, unit.obligations.obligations(calendar))
