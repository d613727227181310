"""A collective-registration upload (附件1 organisations, 附件2 volunteers, 附件3 contacts) as the domain sees it: the
typed rows that passed the file's own checks, the row errors, and the plan of what an import would do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from services.registry.domain.contact import ContactPerson
from services.registry.domain.errors import RegistryError
from services.registry.domain.units import UnitProfile
from services.registry.domain.volunteers import VolunteerProfile


class FormKind(StrEnum):
    ORGANISATIONS = "organisations"  # 附件1
    VOLUNTEERS = "volunteers"  # 附件2
    CONTACTS = "contacts"  # 附件3


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in one cell: 1-based Excel row (the header is row 1), the column's Chinese header
    (None for a whole-row problem) and a Chinese message."""

    sheet: str
    row: int
    column: str | None
    message: str


R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ParsedForm(Generic[R]):
    """The typed rows that passed every check (with their Excel row numbers) and every error found.
    Store nothing unless `ok`: a file is imported whole or not at all."""

    form: FormKind
    sheet: str
    rows: list[R]
    row_numbers: list[int]
    errors: list[RowError]
    total_rows: int  # non-blank data rows in the file
    headers: Mapping[str, str] = field(default_factory=dict)  # field key → the column's Chinese header

    @property
    def ok(self) -> bool:
        return not self.errors

    def header_of(self, key: str) -> str | None:
        return self.headers.get(key)


# ----------------------------------------------------------------------------------------------------
# Row models: what a valid row turns into, ready to store
# ----------------------------------------------------------------------------------------------------


class OrganisationRow(BaseModel):
    """附件1: a unit and the name of its parent (resolved against stored units, or another row of the file).
    `profile.leaders[0]` is the principal leader (with mobile); the others come from 其他负责人."""

    model_config = ConfigDict(frozen=True)

    profile: UnitProfile
    parent_name: str | None = None


class VolunteerRow(BaseModel):
    """附件2: a volunteer and the unit (by name) they join; no unit means the uploading unit."""

    model_config = ConfigDict(frozen=True)

    profile: VolunteerProfile
    unit_name: str | None = None


class ContactRow(BaseModel):
    """附件3: a unit's work contact person; one per unit."""

    model_config = ConfigDict(frozen=True)

    unit_name: str
    contact: ContactPerson


@dataclass
class Plan:
    """What an upload would do, and every problem found."""

    errors: list[RowError] = field(default_factory=list)
    unchanged: int = 0
    elsewhere: int = 0  # rows whose ID number is registered outside the caller's scope (counted, recorded)
    created: list[Any] = field(default_factory=list)
    updated: list[Any] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------
# An upload as a job: its states, its progress and an estimate of what is left
# ----------------------------------------------------------------------------------------------------


class JobState(StrEnum):
    QUEUED = "queued"  # accepted, waiting for a free worker of its replica
    READING = "reading"  # the file's rows read and checked on their own
    CHECKING = "checking"  # the rows checked against the stored data
    STORING = "storing"  # written as pending, then committed in one step
    PUBLISHING = "publishing"  # committed: the events on their way (the import can no longer be cancelled)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # nothing imported: row problems (the marked copy and the list) or a refusal
    CANCELLED = "cancelled"  # nothing imported

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)

    @property
    def committed(self) -> bool:
        return self in (JobState.PUBLISHING, JobState.SUCCEEDED)


JOB_STATE_LABELS: Mapping[JobState, str] = {
    JobState.QUEUED: "排队中",
    JobState.READING: "正在读取文件",
    JobState.CHECKING: "正在核对已有数据",
    JobState.STORING: "正在保存",
    JobState.PUBLISHING: "已导入，正在发布事件",
    JobState.SUCCEEDED: "导入完成",
    JobState.FAILED: "未导入",
    JobState.CANCELLED: "已取消，未导入",
}


@dataclass
class JobProgress:
    """Counters of a running job, written to its record every second or so by its owner."""

    total: int = 0  # data rows in the file (known once read)
    read: int = 0
    checked: int = 0
    stored: int = 0  # volunteers (or units, contacts) written
    to_store: int = 0  # how many the import writes (known once checked)
    published: int = 0  # events handed to Kafka
    to_publish: int = 0

    def as_doc(self) -> dict[str, int]:
        return {k: int(v) for k, v in vars(self).items()}


# Rough shares of a job's time by phase (measured on 附件2: reading ≈ a quarter, storing ≈ half).
_WEIGHTS = (("read", "total", 0.25), ("checked", "total", 0.15), ("stored", "to_store", 0.45))
_PUBLISH_WEIGHT = 0.15


def job_fraction(progress: Mapping[str, int], state: JobState) -> float:
    """How far along a job is, 0…1, from its counters and state."""
    if state.finished:
        return 1.0
    done = 0.0
    for counter, of, weight in _WEIGHTS:
        whole = progress.get(of, 0)
        if whole:
            done += weight * min(1.0, progress.get(counter, 0) / whole)
        elif counter == "stored" and state.committed:
            done += weight
    if progress.get("to_publish"):
        done += _PUBLISH_WEIGHT * min(1.0, progress.get("published", 0) / progress["to_publish"])
    return min(done, 0.99)


def remaining_seconds(fraction: float, elapsed_s: float) -> float | None:
    """What is left at the pace so far; None until there is a pace to go by."""
    if fraction <= 0.02 or elapsed_s <= 0:
        return None
    return max(0.0, elapsed_s * (1 - fraction) / fraction)


class FileRefusedError(RegistryError):
    """A whole uploaded file refused (not xlsx, encrypted, wrong header, too many rows …): ``form_<kind>``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.code = f"form_{kind}"
