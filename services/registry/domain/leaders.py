"""Leaders (负责人) of a unit against the notice's rules (shared.vocabulary.LEADER_RULES): roles a kind does not
have are refused, count gaps are information."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from services.registry.domain.errors import FieldError, InvalidLeaderRoleError
from shared.vocabulary import LEADER_RULES, LeaderRole, UnitKind, roles_for


class Leader(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    role: LeaderRole
    mobile: str | None = None


@dataclass(frozen=True, slots=True)
class LeaderGap:
    """A leader count outside its rule: compliance information shown to the unit, not an error."""

    role: LeaderRole
    minimum: int
    maximum: int | None
    actual: int

    @property
    def shortfall(self) -> int:
        return max(0, self.minimum - self.actual)

    @property
    def excess(self) -> int:
        return 0 if self.maximum is None else max(0, self.actual - self.maximum)

    @property
    def message(self) -> str:
        if self.maximum is None:
            wanted = f"至少{self.minimum}名"
        elif self.minimum == self.maximum:
            wanted = f"{self.minimum}名"
        else:
            wanted = f"{self.minimum}–{self.maximum}名"
        return f"{self.role.label}应为{wanted}，现有{self.actual}名"


def role_error(kind: UnitKind, role: LeaderRole, field: str) -> FieldError:
    allowed = "、".join(r.label for r in roles_for(kind))
    return FieldError(field, f"{kind.label}不设“{role.label}”职务，可设：{allowed}")


def check_leaders(kind: UnitKind, leaders: Iterable[Leader]) -> list[LeaderGap]:
    """Refuse roles the kind does not have (hard error); return the count gaps (compliance information)."""
    leaders = list(leaders)
    allowed = set(roles_for(kind))
    errors = [role_error(kind, x.role, f"leaders[{i}].role") for i, x in enumerate(leaders) if x.role not in allowed]
    if errors:
        raise InvalidLeaderRoleError(errors)
    counts = Counter(x.role for x in leaders)
    gaps = []
    for rule in LEADER_RULES[kind]:
        actual = counts[rule.role]
        if actual < rule.minimum or (rule.maximum is not None and actual > rule.maximum):
            gaps.append(LeaderGap(rule.role, rule.minimum, rule.maximum, actual))
    return gaps


class LeaderDraft(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: str | None = None
    role: str | None = None
    mobile: str | None = None
