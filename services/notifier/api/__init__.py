"""HTTP API of the notifier: webhook subscriptions, the notification log, the campaign calendar, obligations."""

from fastapi import APIRouter

from . import calendar, notifications, subscriptions

ROUTERS: tuple[APIRouter, ...] = (subscriptions.router, notifications.router, calendar.router)

__all__ = ["ROUTERS"]
