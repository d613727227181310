"""The notifier's use cases, over the storage port (``ports``): obligations and notices from events (``notices``,
``copies``), reminders (``reminders``), delivery with retries (``delivery``), webhook subscriptions
(``subscriptions``), reviewed reports (``reviews``), reading the log, the calendar and a unit's obligations
(``inbox``)."""

from .copies import Copies
from .delivery import DeliveryWorker
from .inbox import Inbox, NotificationPage, UnitStanding
from .notices import FanOut, Notices, Obligations
from .reminders import Scheduler
from .reviews import Reviews
from .subscriptions import NewSubscription, Subscriptions

__all__ = [
    "Copies",
    "DeliveryWorker",
    "FanOut",
    "Inbox",
    "NewSubscription",
    "Notices",
    "NotificationPage",
    "Obligations",
    "Reviews",
    "Scheduler",
    "Subscriptions",
    "UnitStanding",
]
