"""Composition root of the registry service: settings → adapters → use cases → routers."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from services.registry.adapters import import_jobs, import_log, lookups, mongo
from services.registry.adapters.crypto import IdNumberCipher
from services.registry.api.errors import registry_error_handler
from services.registry.api.forms import forms, mark_for_job, parse_for_job
from services.registry.api.units import units
from services.registry.api.volunteers import volunteers
from services.registry.domain.errors import RegistryError
from services.registry.settings import RegistrySettings
from services.registry.usecases.import_jobs import ImportJobs
from services.registry.usecases.imports import Imports
from services.registry.usecases.moves import Moves, resume_forever
from services.registry.usecases.units import Units
from services.registry.usecases.volunteers import Volunteers
from shared.service import Service

DESCRIPTION = (
    "河北省科技志愿服务平台 · 注册服务：队伍（总队、支队、队、分队）注册与审核、科技志愿者注册与加入队伍、"
    "集体注册信息表（附件1–3）的模板下载、导入与导出。错误以 RFC 9457 问题详情返回，说明为中文。"
)


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or RegistrySettings()
    indexes = mongo.indexes()
    lookups.indexes(indexes)
    import_log.indexes(indexes, mongo.VOLUNTEERS)
    import_jobs.indexes(indexes)
    service = Service("registry", settings, indexes=indexes, outbox_collections=[mongo.UNITS, mongo.VOLUNTEERS])
    app = service.create_app(units, volunteers, forms, title="科技志愿服务平台 · 注册服务", description=DESCRIPTION)

    cipher = IdNumberCipher.from_settings(settings)
    store = mongo.MongoRegistry(service.outbox, cipher, year=settings.campaign_year)
    ledger = lookups.IdLookups(service.db, settings.id_lookup_daily_limit)
    journal = import_log.ImportLog(service.db, service.outbox, mongo.VOLUNTEERS, lease_s=settings.import_lease_s)

    app.state.registry = store  # the storage adapter, for operations, tests and benchmarks
    app.state.units = unit_cases = Units(store)
    app.state.volunteers = Volunteers(store, cipher, ledger)
    app.state.imports = imports = Imports(store, unit_cases, cipher, ledger, journal)
    app.state.import_log = journal
    app.state.moves = moves = Moves(store)
    app.state.import_jobs = jobs = ImportJobs(
        imports,
        import_jobs.ImportJobs(service.db, lease_s=settings.import_job_lease_s),
        journal,
        parse_for_job,
        mark_for_job,
        concurrency=settings.import_jobs_per_replica,
        publish_wait_s=settings.import_job_publish_wait_s,
    )

    service.background.append(partial(mongo.backfill_once, store))
    service.background.append(
        partial(import_log.recover_forever, journal, settings.import_recovery_interval_s, jobs.recover)
    )
    service.background.append(partial(resume_forever, moves, settings.unit_move_resume_interval_s))
    app.add_exception_handler(RegistryError, registry_error_handler)
    return app
