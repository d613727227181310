"""The typed bodies of the HTTP API: the request of a submission and every JSON answer, exactly as answered."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

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
    submitted_at: datetime = Field(description="首次报送时间")
    submitted_by: str
    late: bool
    status: Literal["submitted", "returned", "accepted"] = Field(description="审核状态：待审核、已退回、已通过")
    version: int = Field(description="最新版本号")


class MonthlyReportContent(UnitOut):
    """A month's report as generated from the statistics (as submitted: one version's content)."""

    month: str
    due_at: datetime
    team_building: TeamBuilding
    own: MonthFigures
    rollup: MonthFigures
    units: list[MonthRow]
    activities_carried_out: list[ActivityCarriedOut]


class MonthlyReport(MonthlyReportContent):
    submission: SubmissionSummary | None


ReportKind = Literal["action_plan", "monthly"]
ListedStatus = Literal["accepted", "returned", "late", "submitted", "missing", "pending"]


class AmendActionPlanIn(BaseModel):
    text: str = Field(min_length=1, max_length=50_000, description="修改后的行动计划正文")
    attachment_links: list[HttpUrl] = Field(default_factory=list, max_length=20, description="附件链接")
    note: str | None = Field(default=None, max_length=2_000, description="修改说明")


class AmendMonthlyIn(BaseModel):
    note: str | None = Field(default=None, max_length=2_000, description="修改说明（月报按当前统计数据重新生成）")


class ReviewIn(BaseModel):
    decision: Literal["accept", "return"] = Field(description="accept 通过 / return 退回")
    version: int = Field(ge=1, description="审核的版本（须为最新版本）")
    comment: str | None = Field(default=None, max_length=5_000, description="审核意见（退回时必填）")


class ReportVersion(Out):
    version: int
    submitted_at: datetime
    submitted_by: str | None = Field(description="报送账号")
    submitted_by_name: str | None = Field(description="报送人")
    note: str | None = Field(description="修改说明（第1版为空）")
    text: str | None = Field(default=None, description="行动计划正文")
    attachment_links: list[str] | None = Field(default=None, description="附件链接")
    report: MonthlyReportContent | None = Field(default=None, description="月报内容")


class ReportReview(Out):
    version: int
    decision: Literal["accept", "return"]
    comment: str | None
    reviewed_at: datetime
    reviewed_by: str
    reviewed_by_name: str | None


class Report(Out):
    """A submitted report whole: where it stands, its latest version, every version and every decision."""

    id: str = Field(alias="_id")
    kind: ReportKind
    kind_zh: str
    unit_id: str
    period: str = Field(description="年份（行动计划）或 YYYY-MM（月报）")
    status: ListedStatus = Field(description="submitted / late 待审核, returned 已退回, accepted 已通过")
    status_zh: str
    version: int = Field(description="最新版本号")
    due_at: datetime
    submitted_at: datetime = Field(description="首次报送时间（是否逾期以此为准）")
    submitted_by: str | None
    submitted_by_name: str | None
    late: bool
    current: ReportVersion = Field(description="最新版本")
    versions: list[ReportVersion] = Field(description="全部版本，从第1版起")
    reviews: list[ReportReview] = Field(description="省级办公室的审核记录")


class ReportRow(UnitOut):
    status: ListedStatus
    status_zh: str
    due_at: datetime
    version: int | None
    submitted_at: datetime | None = Field(description="首次报送时间")
    last_submitted_at: datetime | None = Field(description="最新版本的报送时间")
    late: bool | None
    reviewed_at: datetime | None


class ReportListing(Out):
    unit_id: str
    kind: ReportKind
    kind_zh: str
    period: str
    due_at: datetime
    as_of: datetime
    counts: dict[str, int] = Field(description="各状态的队伍数")
    units: list[ReportRow]


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
