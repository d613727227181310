"""The demand library."""

from __future__ import annotations

import pytest

from services.activities.domain import (
    Demand,
    DemandStatus,
    InvalidDemandTransition,
    change_demand_status,
)

# ---- demands ----


def test_demand_status_changes() -> None:
    demand = Demand(id="d-1", unit_id="unit-1", enterprise="某机械厂", title="焊接工艺改进", description="…")
    matched = change_demand_status(demand, DemandStatus.MATCHED)
    assert change_demand_status(matched, DemandStatus.SOLVED).status is DemandStatus.SOLVED
    with pytest.raises(InvalidDemandTransition):
        change_demand_status(change_demand_status(matched, DemandStatus.SOLVED), DemandStatus.OPEN)
