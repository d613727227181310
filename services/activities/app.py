"""Composition root of the activities service: settings → adapters → use cases → routers and consumers."""

from __future__ import annotations

from fastapi import FastAPI

from shared.service import Service
from shared.unit_paths import attach_unit_paths

from .adapters.mongo import ACTIVITIES, DEMANDS, SIGNUPS, Store, indexes
from .api import router
from .api.errors import install_activity_errors
from .consumers import register_consumers
from .settings import ActivitiesSettings
from .usecases.batches import SignUpBatches
from .usecases.repair import repair_loop

REPAIR_INTERVAL_S = 10.0  # claims left by a dead process, places owed to a waitlist


def create_app(settings: ActivitiesSettings | None = None) -> FastAPI:
    settings = settings or ActivitiesSettings()
    service = Service("activities", settings, indexes=indexes(), outbox_collections=[ACTIVITIES, SIGNUPS, DEMANDS])
    store = Store(service)
    register_consumers(service, store)
    attach_unit_paths(service)  # the unit tree the scope rule needs (shared.scope)
    service.background.append(lambda: repair_loop(store, REPAIR_INTERVAL_S))
    app = service.create_app(
        router(),
        title="科技志愿服务活动",
        description="活动发布、报名、签到签退、服务时长、宣传与企业创新难题需求库",
    )
    install_activity_errors(app)
    app.state.store = store
    app.state.batches = SignUpBatches(store)
    app.state.checkin_secret = settings.checkin_secret.get_secret_value()
    return app
