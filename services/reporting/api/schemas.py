"""The typed bodies of the HTTP API: the request of a submission and every JSON answer, exactly as answered."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class ActionPlanIn(BaseModel):
    unit_id: str = Field(min_length=1, max_length=100)
    year: int = Field(ge=2000, le=2100)
    text: str = Field(min_length=1, max_length=50_000, description="行动计划正文")
    attachment_links: list[HttpUrl] = Field(
        default_factory=list, max_length=20, description="附件链接（附件1、附件2等）"
    )


class Out(BaseModel):
    """An answer: every key it has is declared (a key the model does not know is an error, not dropped)."""

    model_config = ConfigDict(extra="forbid")


class UnitOut(Out):
    unit_id: str
    name: str | None
    kind: str
    kind_zh: str = Field(description="队伍类型")
    level_zh: str = Field(description="汇总层级（市级、学会、高校、企业、县级…）")
    city: str | None
    city_zh: str | None
    parent_id: str | None
    status: str | None


class RuleOut(Out):
    rule: str = Field(description="headcount, leaders, activity-Q<n>, theme-<theme>, registration, … monthly-YYYY-MM")
    status: str = Field(description="met / not_yet / missed")
    status_zh: str
    gap: int = Field(description="尚缺的人数、负责人数、活动次数或报送")
    label_zh: str
    detail_zh: str
    due_at: datetime | None


class ComplianceRow(UnitOut):
    volunteers: int
    subtree_volunteers: int
    first_batch_volunteers: int
    minimum: int | None = Field(description="首批最低人数（无要求时为空）")
    rules: list[RuleOut]
    summary: dict[str, int] = Field(description="各状态的考核项目数")


class ComplianceTable(Out):
    unit_id: str
    year: int
    quarter: int | None
    as_of: datetime
    units: list[ComplianceRow]


class YearFigures(Out):
    activities: int
    quarters: dict[str, int]
    lines: dict[str, int]
    themes: dict[str, int]
    people_served: int
    participations: int
    hours: float
    quarter_hours: dict[str, float]
    volunteers: int


class YearRollup(YearFigures):
    units: int
    units_by_kind: dict[str, int]


class UnitStats(UnitOut):
    year: int
    leader_counts: dict[str, int]
    own: YearFigures
    rollup: YearRollup


class VolunteerStats(Out):
    volunteer_id: str
    display_name: str | None
    platform_number: str | None
    status: str | None
    unit_ids: list[str]
    hours: float
    activities: int
    star_level: int
    hours_to_next_star: float | None


class Submission(Out):
    id: str = Field(alias="_id")
    kind: str = Field(description="action_plan / monthly")
    unit_id: str
    period: str = Field(description="年份（行动计划）或 YYYY-MM（月报）")
    submitted_at: datetime
    submitted_by: str
    late: bool
    due_at: datetime


class MonthFigures(Out):
    activities: int
    people_served: int
    new_volunteers: int
    lines: dict[str, int]
    hours: float


class MonthRow(UnitOut, MonthFigures):
    volunteers: int
    minimum: int | None


class TeamBuilding(Out):
    units: int
    units_active: int
    volunteers: int
    subtree_volunteers: int
    new_volunteers: int
    subtree_new_volunteers: int


class ActivityCarriedOut(Out):
    activity_id: str
    title: str
    starts_at: datetime
    line_of_work: str
    themes: list[str]
    participants: int
    people_served: int
    hours: float
    unit_id: str
    unit_name: str | None


class SubmissionSummary(Out):
    kind: str
    unit_id: str
    period: str
    submitted_at: datetime
    submitted_by: str
    late: bool


class MonthlyReport(UnitOut):
    month: str
    due_at: datetime
    team_building: TeamBuilding
    own: MonthFigures
    rollup: MonthFigures
    units: list[MonthRow]
    activities_carried_out: list[ActivityCarriedOut]
    submission: SubmissionSummary | None


class CertificateCheck(Out):
    valid: bool
    number: str
    platform_number: str | None
    id_number_masked: str | None
    display_name: str | None
    hours: float | None
    activities: int | None
    star_level: int | None
    issuing_unit_name: str | None
    issued_at: datetime | None
