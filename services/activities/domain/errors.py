"""Every refusal of the activities domain: an `ActivityError` subclass with a stable `code` and a Chinese `message`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from .values import ActivityStatus, DemandStatus, SignUpStatus


class ActivityError(Exception):
    """A refusal by the activities domain: `code` is stable for machines, `message` is Chinese for people."""

    code: ClassVar[str] = "activity_error"
    default_message: ClassVar[str] = "活动操作失败"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class Violation(BaseModel):
    """One broken rule of an activity's data: the field (dotted path) and a Chinese message."""

    model_config = ConfigDict(frozen=True)

    field: str
    message: str


class ActivityValidationError(ActivityError):
    code = "activity_invalid"
    default_message = "活动信息有误"

    def __init__(self, violations: Iterable[Violation]) -> None:
        self.violations = tuple(violations)
        super().__init__("活动信息有误：" + "；".join(v.message for v in self.violations))


class InvalidTransition(ActivityError):
    code = "invalid_transition"

    def __init__(self, current: ActivityStatus, requested: ActivityStatus) -> None:
        self.current = current
        self.requested = requested
        super().__init__(f"活动当前状态为“{current.label}”，不能变更为“{requested.label}”")


class CancelReasonRequired(ActivityError):
    code = "cancel_reason_required"
    default_message = "取消活动必须填写原因"


class ActivityNotEditable(ActivityError):
    code = "activity_not_editable"

    def __init__(self, status: ActivityStatus) -> None:
        self.status = status
        super().__init__(f"活动状态为“{status.label}”，不能再修改活动信息")


class PublicityBeforeCompletion(ActivityError):
    code = "publicity_before_completion"

    def __init__(self, status: ActivityStatus) -> None:
        self.status = status
        super().__init__(f"活动状态为“{status.label}”，活动结束后才能发布宣传信息")


class SignUpRefused(ActivityError):
    """Base of every refused sign-up."""

    code = "signup_refused"
    default_message = "报名失败"


class VolunteerUnknown(SignUpRefused):
    code = "volunteer_unknown"
    default_message = "未找到该志愿者，请先完成志愿者注册"


class VolunteerInactive(SignUpRefused):
    code = "volunteer_inactive"
    default_message = "该志愿者当前不在册（未激活或已离开所属队伍），不能报名"


class AlreadySignedUp(SignUpRefused):
    code = "already_signed_up"
    default_message = "您已报名该活动，请勿重复报名"


class ActivityIsDraft(SignUpRefused):
    code = "activity_not_published"
    default_message = "活动尚未发布，暂不能报名"


class ActivityIsCancelled(SignUpRefused):
    code = "activity_cancelled"
    default_message = "活动已取消，不能报名"


class ActivityIsCompleted(SignUpRefused):
    code = "activity_completed"
    default_message = "活动已结束，不能报名"


class OutsideSignUpWindow(SignUpRefused):
    code = "signup_window_closed"
    default_message = "不在报名时间内"


class SignUpNotYetOpen(OutsideSignUpWindow):
    code = "signup_not_yet_open"
    default_message = "报名尚未开始"


class SignUpClosed(OutsideSignUpWindow):
    code = "signup_closed"
    default_message = "报名已截止"


class SignUpNotActive(ActivityError):
    code = "signup_not_active"

    def __init__(self, status: SignUpStatus) -> None:
        self.status = status
        super().__init__(f"该报名状态为“{status.label}”，不能进行此操作")


class CheckInRefused(ActivityError):
    code = "checkin_refused"
    default_message = "签到失败"


class CheckInCodeMismatch(CheckInRefused):
    code = "checkin_code_mismatch"
    default_message = "签到码无效或不属于本活动"


class OutsideCheckInWindow(CheckInRefused):
    code = "checkin_outside_window"

    def __init__(self, grace: timedelta) -> None:
        minutes = int(grace.total_seconds() // 60)
        super().__init__(f"不在本活动的签到时间内（活动开始前{minutes}分钟至结束后{minutes}分钟）")


class NotCheckedIn(ActivityError):
    code = "not_checked_in"
    default_message = "尚未签到，不能签退"


class AlreadyCheckedIn(ActivityError):
    code = "already_checked_in"
    default_message = "已签到，请勿重复签到"


class AlreadyCheckedOut(ActivityError):
    code = "already_checked_out"
    default_message = "已签退，请勿重复签退"


class CheckOutBeforeCheckIn(ActivityError):
    code = "checkout_before_checkin"
    default_message = "签退时间不能早于签到时间"


class InvalidCorrection(ActivityError):
    code = "invalid_correction"
    default_message = "补录服务时长失败"


class CorrectionReasonRequired(InvalidCorrection):
    code = "correction_reason_required"
    default_message = "补录服务时长必须填写原因"


class CorrectionHoursOutOfRange(InvalidCorrection):
    code = "correction_hours_out_of_range"

    def __init__(self, hours: Decimal, span: Decimal) -> None:
        self.hours = hours
        self.span = span
        super().__init__(f"补录的服务时长（{hours}小时）必须在0到活动时长（{span}小时）之间")


class InvalidDemandTransition(ActivityError):
    code = "invalid_demand_transition"

    def __init__(self, current: DemandStatus, requested: DemandStatus) -> None:
        self.current = current
        self.requested = requested
        super().__init__(f"需求当前状态为“{current.label}”，不能变更为“{requested.label}”")


# ---- Refusals of the use cases (who may do what, what exists): each becomes the same problem as before ----


class ActivityNotFound(ActivityError):
    code = "activity_not_found"
    default_message = "未找到该活动"


class DemandNotFound(ActivityError):
    code = "demand_not_found"
    default_message = "未找到该需求"


class SignUpNotFound(ActivityError):
    code = "signup_not_found"
    default_message = "未找到该志愿者的报名记录"


class NotUnitAdmin(ActivityError):
    code = "not_unit_admin"
    default_message = "只有组织单位及其上级单位的管理员或省级管理员可以执行此操作"


class VolunteerOutOfScope(ActivityError):
    code = "volunteer_out_of_scope"
    default_message = "该志愿者不在本账号的管理范围内：只能为本队伍及下级队伍的志愿者代为操作"


class NoVolunteer(ActivityError):
    code = "no_volunteer"
    default_message = "当前账号未关联志愿者身份"


class NotYourself(ActivityError):
    code = "not_yourself"
    default_message = "志愿者只能为本人报名或取消报名"


class ForbiddenRole(ActivityError):
    code = "forbidden_role"
    default_message = "当前账号的角色无权执行此操作"


class AtForAdmins(ActivityError):
    code = "at_for_admins"
    default_message = "只有管理员可以补记签到签退时刻"


class MissingField(ActivityError):
    """A field the request must carry in this case (the problem names it in ``errors``)."""

    field: ClassVar[str] = ""


class VolunteerRequired(MissingField):
    code = "volunteer_required"
    default_message = "管理员代为操作时必须指定志愿者"
    field = "volunteer_id"


class CheckInCodeRequired(MissingField):
    code = "checkin_code_required"
    default_message = "请扫描活动的签到码"
    field = "code"


class TimeInFuture(MissingField):
    code = "time_in_future"
    default_message = "签到签退时刻不能晚于当前时间"
    field = "at"


class ActivityNotOpen(ActivityError):
    code = "activity_not_open"

    def __init__(self, status: ActivityStatus, action: str) -> None:
        self.status = status
        super().__init__(f"活动状态为“{status.label}”，不能{action}")


class NotConfirmed(ActivityError):
    code = "not_confirmed"
    default_message = "该志愿者没有本活动的有效报名（报名成功后才能签到签退）"
