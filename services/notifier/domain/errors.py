"""The notifier's refusals, as values: each is mapped once to an HTTP problem (``api/errors.py``)."""

from __future__ import annotations


class NotifierError(Exception):
    """A refusal of the notifier (the message is user-facing, Chinese)."""


class UnknownEventTypes(NotifierError):
    def __init__(self, types: list[str]) -> None:
        super().__init__(f"未知的事件类型：{'、'.join(types)}")
        self.types = types


class SubscriptionNotFound(NotifierError):
    def __init__(self) -> None:
        super().__init__("未找到该订阅")


class UnitNotFound(NotifierError):
    def __init__(self) -> None:
        super().__init__("未找到该单位（尚未收到其注册信息）")


class OutOfScope(NotifierError):
    """Not the caller's to read: answered as not found (nothing is revealed)."""


class PersonalDataRefused(NotifierError):
    """A system key reads no person's record, and the notification log names people."""

    def __init__(self) -> None:
        super().__init__("系统账号不能读取通知记录（含个人信息）")
