"""What a caller may see and change in the registry, by the platform's one scope rule (:func:`shared.scope.covers`):
the province everything; a unit admin its unit and below; a volunteer itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.identity import Identity
from shared.scope import covers, unit_path


@dataclass(frozen=True)
class Scope:
    """One caller's reach over units and volunteers (documents with ``_id``, ``ancestors``, ``scope_units``)."""

    identity: Identity

    @property
    def province(self) -> bool:
        return self.identity.role in ("province_admin", "system")

    @property
    def admin(self) -> bool:
        return self.province or self.identity.role == "unit_admin"

    def sees_unit(self, unit: Mapping[str, Any]) -> bool:
        """The shared rule (:mod:`shared.scope`): its own unit and every unit below it."""
        return self.province or covers(self.identity, unit_path(unit))

    def manages_unit(self, unit: Mapping[str, Any]) -> bool:
        """May change this unit (its own unit or one below)."""
        return self.sees_unit(unit)

    def sees_volunteer(self, volunteer: Mapping[str, Any]) -> bool:
        if self.province:
            return True
        if self.identity.role == "unit_admin":
            # scope_units: every unit on the paths of the volunteer's memberships
            return covers(self.identity, volunteer.get("scope_units", []))
        if self.identity.role == "volunteer":
            return volunteer["_id"] == self.identity.volunteer_id or (
                volunteer.get("account") is not None and volunteer.get("account") == self.identity.subject
            )
        return False

    @property
    def own_unit(self) -> str | None:
        """The unit a unit admin manages (None for anyone else): listings are limited to it and below."""
        return self.identity.unit_id if self.identity.role == "unit_admin" else None
