"""Composition root of the reporting service: settings → adapters → use cases → routers and consumers."""

from __future__ import annotations

from datetime import datetime

from fastapi import FastAPI

from shared import clock
from shared.service import Service

from .adapters.documents import DocumentRenderer
from .adapters.mongo import (
    SUBMISSIONS,
    MongoCertificates,
    MongoProjectionStore,
    MongoReadModels,
    MongoSubmissions,
    indexes,
)
from .adapters.registry_client import RegistryClient
from .api import router
from .api.errors import install_error_handlers
from .consumers import register
from .settings import ReportingSettings
from .usecases.certificates import Certificates
from .usecases.projection import ProjectEvents
from .usecases.queries import Campaign, Queries
from .usecases.reports import Reports
from .usecases.submissions import Submit


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    service = Service("reporting", settings, indexes=indexes(), outbox_collections=[SUBMISSIONS])
    register(service, ProjectEvents(MongoProjectionStore(service.db)), settings.projections_consumer)
    app = service.create_app(
        router,
        title="统计、达标与信息报送",
        description="按队伍层级汇总的注册、活动、服务时长统计；各项要求达标情况；行动计划与月报报送；导出与证明",
    )
    install_error_handlers(app)
    # The clock and the registry's transport are read at each use: tests put their own on the app.
    app.state.clock = clock.now
    app.state.registry_transport = None

    def now() -> datetime:
        current: datetime = app.state.clock()
        return current

    read, documents = MongoReadModels(service.db), DocumentRenderer()
    campaign = Campaign(settings.campaign_year, settings.monthly_report_day, settings.campaign_start_month)
    queries = Queries(read, MongoSubmissions(service.db, service.outbox), documents, campaign, now)
    registry = RegistryClient(settings, transport=lambda: app.state.registry_transport)
    secret = settings.certificate_secret.get_secret_value()
    app.state.queries = queries
    app.state.submit = Submit(read, MongoSubmissions(service.db, service.outbox), queries, now)
    app.state.reports = Reports(app.state.submit, queries)
    app.state.certificates = Certificates(
        read, MongoCertificates(service.db), registry, documents, queries, secret, now
    )
    return app
