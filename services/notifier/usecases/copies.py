"""The copies of other services' data that volunteers' notices need: activities (title, start, sign-ups) and
volunteers' display names. Kept from events; a redelivered or older event changes nothing."""

from __future__ import annotations

from shared.contracts import events as ev

from .ports import NoticeStore


class Copies:
    def __init__(self, store: NoticeStore) -> None:
        self.store = store

    async def activity_published(self, data: ev.ActivityPublished) -> None:
        fields = {"unit_id": data.unit_id, "title": data.title, "starts_at": data.starts_at, "county": data.county}
        await self.store.publish_activity(data.activity_id, fields)

    async def signup(self, activity_id: str, volunteer_id: str, status: str) -> None:
        await self.store.update_activity(activity_id, {f"signups.{volunteer_id}": status})

    async def activity_status(self, activity_id: str, status: str) -> None:
        await self.store.update_activity(activity_id, {"status": status})

    async def volunteer(self, data: ev.VolunteerSnapshot) -> None:
        await self.store.save_volunteer(data.volunteer_id, data.display_name, data.version)
