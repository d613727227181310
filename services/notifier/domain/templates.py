"""Chinese e-mail templates of the notifier (Jinja2, plain text).

Rendering is strict: a missing value raises `MissingTemplateValueError` naming it, never a half-filled mail.
Dates are shown in Beijing time (Asia/Shanghai), e.g. "2026年4月20日".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined, TemplateError, TemplateNotFound, meta
from jinja2.exceptions import TemplateRuntimeError

from shared.calendar import SHANGHAI

DEADLINE_APPROACHING = "deadline_approaching"  # to a unit's contact person
DEADLINE_MISSED = "deadline_missed"  # to the province office
ACTIVITY_REMINDER = "activity_reminder"  # to a signed-up volunteer, the day before
ACTIVITY_CANCELLED = "activity_cancelled"  # to a signed-up volunteer
REPORT_RETURNED = "report_returned"  # to a unit (inbox, and its contact's e-mail): read the comment, submit again
REPORT_AMENDED = "report_amended"  # to the province office's inbox: a report waits for review again
REPORT_ACCEPTED = "report_accepted"  # to a unit's inbox

DEFAULT_PLATFORM_URL = "https://www.stvs.org.cn"  # the platform's public address, named in the mails

_SIGNATURE = "河北省科技志愿者总队工作办公室\n（本邮件由系统自动发送，请勿直接回复）"

# name -> (subject, body)
_SOURCES: Mapping[str, tuple[str, str]] = {
    DEADLINE_APPROACHING: (
        "【科技志愿服务】{{ deadline_title }}"
        "{% if days_left > 0 %}还有{{ days_left }}天截止{% else %}今天截止{% endif %}",
        """{{ unit_name }}：

您单位的“{{ deadline_title }}”将于{{ due_at|zh_date }}{{ due_at|zh_time }}（北京时间）截止，\
{% if days_left > 0 %}距截止还有{{ days_left }}天{% else %}今天截止{% endif %}，目前尚未完成。

需要办理：{{ action }}

请尽快登录科技志愿服务信息平台（{{ platform_url|site }}）办理。如已办理，请忽略本提醒。

"""
        + _SIGNATURE,
    ),
    DEADLINE_MISSED: (
        "【科技志愿服务】{{ deadline_title }}逾期未完成单位（{{ units|length }}个）",
        """省科技志愿者总队工作办公室：

“{{ deadline_title }}”已于{{ due_at|zh_date }}{{ due_at|zh_time }}（北京时间）截止，\
以下{{ units|length }}个单位未按时完成：

{% for unit in units %}
{{ loop.index }}. {{ unit }}
{% endfor %}

请督促相关单位尽快补报。

"""
        + _SIGNATURE,
    ),
    ACTIVITY_REMINDER: (
        "【活动提醒】明天{{ starts_at|zh_time }}：{{ activity_title }}",
        """{{ volunteer_name }}，您好：

您报名参加的科技志愿服务活动将于明天举行：

活动名称：{{ activity_title }}
开始时间：{{ starts_at|zh_date }}（{{ starts_at|zh_weekday }}）{{ starts_at|zh_time }}
活动地点：{{ location }}
组织单位：{{ unit_name }}

请合理安排时间，准时参加。如不能参加，请及时登录平台取消报名，以便组织单位安排。

感谢您对科技志愿服务的支持！

"""
        + _SIGNATURE,
    ),
    ACTIVITY_CANCELLED: (
        "【活动取消】{{ activity_title }}（原定{{ starts_at|zh_date }}）",
        """{{ volunteer_name }}，您好：

很抱歉地通知您，您报名参加的科技志愿服务活动“{{ activity_title }}”\
（原定{{ starts_at|zh_date }}{{ starts_at|zh_time }}，组织单位：{{ unit_name }}）已取消。
{% if reason %}

取消原因：{{ reason }}
{% endif %}

您的报名已自动撤销，无需其他操作。欢迎关注平台上的其他活动。

"""
        + _SIGNATURE,
    ),
    REPORT_RETURNED: (
        "【科技志愿服务】{% if reminder %}再次提醒：{% endif %}{{ report_title }}已退回，请修改后重新提交",
        """{{ unit_name }}：

您单位提交的“{{ report_title }}”（第{{ version }}版）已于{{ returned_at|zh_date }}被省科技志愿者总队工作办公室退回。\
{% if reminder %}目前尚未重新提交。{% endif %}

请登录科技志愿服务信息平台（{{ platform_url|site }}）查看退回意见，按意见修改后重新提交。

"""
        + _SIGNATURE,
    ),
    REPORT_AMENDED: (
        "【科技志愿服务】{{ unit_name }}已重新提交{{ report_title }}，待审核",
        """省科技志愿者总队工作办公室：

{{ unit_name }}已修改并重新提交“{{ report_title }}”（第{{ version }}版），请登录平台审核。

"""
        + _SIGNATURE,
    ),
    REPORT_ACCEPTED: (
        "【科技志愿服务】{{ report_title }}已通过审核",
        """{{ unit_name }}：

您单位提交的“{{ report_title }}”（第{{ version }}版）已通过省科技志愿者总队工作办公室审核，无需其他操作。

"""
        + _SIGNATURE,
    ),
}

# Values a template may go without.
_DEFAULTS: Mapping[str, Mapping[str, object]] = {
    ACTIVITY_CANCELLED: {"reason": ""},
    DEADLINE_APPROACHING: {"platform_url": DEFAULT_PLATFORM_URL},
    REPORT_RETURNED: {"platform_url": DEFAULT_PLATFORM_URL, "reminder": False},
}

TEMPLATE_NAMES: tuple[str, ...] = tuple(_SOURCES)


class MissingTemplateValueError(TemplateError):
    """Rendering was asked without a value the template needs."""

    def __init__(self, template: str, missing: list[str]) -> None:
        super().__init__(f"template {template!r} is missing value(s): {', '.join(missing)}")
        self.template = template
        self.missing = missing


def _local(value: object) -> date:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise TemplateRuntimeError(f"naive datetime {value.isoformat()} given to a template: use an aware one")
        return value.astimezone(SHANGHAI)
    if isinstance(value, date):
        return value
    raise TemplateRuntimeError(f"expected a date or datetime, got {type(value).__name__}")


def zh_date(value: object) -> str:
    day = _local(value)
    return f"{day.year}年{day.month}月{day.day}日"


def zh_time(value: object) -> str:
    moment = _local(value)
    if not isinstance(moment, datetime):
        raise TemplateRuntimeError("a time of day needs a datetime, not a date")
    return f"{moment.hour:02d}:{moment.minute:02d}"


def zh_weekday(value: object) -> str:
    return "星期" + "一二三四五六日"[_local(value).weekday()]


def site(value: object) -> str:
    """A web address as a mail names it: without the scheme, e.g. "www.stvs.org.cn"."""
    text = str(value)
    for scheme in ("https://", "http://"):
        text = text.removeprefix(scheme)
    return text.rstrip("/")


def _environment() -> Environment:
    sources = {
        f"{name}/{part}": text
        for name, pair in _SOURCES.items()
        for part, text in zip(("subject", "body"), pair, strict=True)
    }
    # Plain-text mail: HTML escaping would mangle "&" and quotes in unit names.
    env = Environment(
        loader=DictLoader(sources),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(zh_date=zh_date, zh_time=zh_time, zh_weekday=zh_weekday, site=site)
    return env


_ENV = _environment()
_REQUIRED: Mapping[str, frozenset[str]] = {
    name: frozenset(
        variable
        for source in pair
        for variable in meta.find_undeclared_variables(_ENV.parse(source))
        if variable not in _DEFAULTS.get(name, {})
    )
    for name, pair in _SOURCES.items()
}


def required_values(name: str) -> frozenset[str]:
    """The values `render(name, ...)` needs."""
    if name not in _REQUIRED:
        raise TemplateNotFound(name)
    return _REQUIRED[name]


def render(name: str, **values: Any) -> tuple[str, str]:
    """(subject, body) of template `name`; raises `MissingTemplateValueError` listing every missing value."""
    missing = sorted(required_values(name) - values.keys())
    if missing:
        raise MissingTemplateValueError(name, missing)
    context = {**_DEFAULTS.get(name, {}), **values}
    subject = _ENV.get_template(f"{name}/subject").render(context)
    body = _ENV.get_template(f"{name}/body").render(context)
    return " ".join(subject.split()), body.strip() + "\n"
