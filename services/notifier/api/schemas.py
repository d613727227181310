"""Typed request and response bodies of the notifier's API (the JSON answered before they were typed, unchanged)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, EmailStr, Field


class SubscriptionIn(BaseModel):
    url: str = Field(max_length=2000, description="Where deliveries are POSTed (http/https)")
    event_types: list[str] = Field(
        min_length=1, max_length=200, description="Event types wanted, e.g. stvs.unit.registered.v1"
    )
    contact_email: EmailStr | None = Field(None, description="Told when the subscription is paused")
    description: str | None = Field(None, max_length=200)


class SubscriptionOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    status: Literal["active", "paused"]
    contact_email: str | None = None
    description: str | None = None
    created_at: datetime
    failing_since: datetime | None = None
    paused_at: datetime | None = None
    last_error: str | None = None


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="Signing secret (whsec_…): shown only once")


class NotificationOut(BaseModel):
    id: str
    event_id: str | None
    event_type: str | None
    kind: str | None
    recipient: str | None
    address: str | None
    unit_id: str | None
    channel: str | None
    subject: str | None
    body: str | None
    attempts: int
    outcome: str | None
    last_error: str | None
    created_at: datetime | None
    sent_at: datetime | None
    next_attempt_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    total: int
    limit: int
    offset: int


class DeadlineOut(BaseModel):
    id: str
    kind: str
    title: str
    action: str
    due_at: datetime
    period: str | None
    obligations: list[str]
    reminders_at: list[datetime]


class ObligationOut(BaseModel):
    deadline_id: str
    title: str
    kind: str
    due_at: datetime
    open: bool
    closed_at: datetime | None
    late: bool


class UnitObligationsOut(BaseModel):
    unit_id: str
    name: str | None
    year: int
    obligations: list[ObligationOut]
