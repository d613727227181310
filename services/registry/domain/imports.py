"""A collective-registration upload (附件1 organisations, 附件2 volunteers, 附件3 contacts) as the domain sees it: the
typed rows that passed the file's own checks, the row errors, and the plan of what an import would do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from services.registry.domain.contact import ContactPerson
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
