"""Composition root of the reporting service."""

from __future__ import annotations

from fastapi import FastAPI

from shared import clock
from shared.service import Service

from .api import router
from .projections import register
from .settings import ReportingSettings
from .store import SUBMISSIONS, indexes


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    service = Service("reporting", settings, indexes=indexes(), outbox_collections=[SUBMISSIONS])
    register(service, settings.projections_consumer)
    app = service.create_app(
        router,
        title="统计、达标与信息报送",
        description="按队伍层级汇总的注册、活动、服务时长统计；各项要求达标情况；行动计划与月报报送；导出与证明",
    )
    app.state.clock = clock.now
    return app
