"""The registry's use cases on the in-memory ports: no Kafka, no database."""

from __future__ import annotations

import pytest

from services.registry.domain.leaders import LeaderDraft
from services.registry.usecases.imports import Imports
from services.registry.usecases.units import Units
from services.registry.usecases.volunteers import Volunteers
from tests.registry.helpers import CITY_LEADERS
from tests.registry.usecases.builders import PROVINCE, Registry, World, leaders, unit_asked
from tests.registry.usecases.memory import Ledger, MemoryImports, MemoryRegistry, PlainCipher


@pytest.fixture
def registry() -> Registry:
    store = MemoryRegistry()
    cipher = PlainCipher()
    ledger = Ledger(limit=3)
    units = Units(store)
    return Registry(
        store,
        ledger,
        units,
        Volunteers(store, cipher, ledger),
        Imports(store, units, cipher, ledger, MemoryImports(store)),
    )


@pytest.fixture
async def world(registry: Registry) -> World:
    """The corps, two city detachments and a county team under the first, all registered by the province."""
    units = registry.units
    corps = await units.register(unit_asked("总队", "", leaders=leaders(("张总", "总队长"))), PROVINCE)
    city_leaders = [LeaderDraft.model_validate(x) for x in CITY_LEADERS]
    city = await units.register(unit_asked("市级支队", "石家庄", corps["_id"], leaders=city_leaders), PROVINCE)
    other = await units.register(unit_asked("市级支队", "唐山", corps["_id"], leaders=city_leaders), PROVINCE)
    county_leaders = leaders(("褚队长", "队长"), ("卫副", "副队长"), ("蒋副", "副队长"))
    county = await units.register(unit_asked("县级队", "正定县", city["_id"], leaders=county_leaders), PROVINCE)
    return World(corps["_id"], city["_id"], county["_id"], other["_id"])
