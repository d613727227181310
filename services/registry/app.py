"""Composition root of the registry service."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI

from services.registry import import_log, lookups, store
from services.registry.api import registry_error_handler, units, volunteers
from services.registry.crypto import IdNumberCipher
from services.registry.domain.errors import RegistryError
from services.registry.settings import RegistrySettings
from shared.service import Service

log = logging.getLogger("stvs.registry")

DESCRIPTION = (
    "河北省科技志愿服务平台 · 注册服务：队伍（总队、支队、队、分队）注册与审核、科技志愿者注册与加入队伍、"
    "集体注册信息表（附件1–3）的模板下载、导入与导出。错误以 RFC 9457 问题详情返回，说明为中文。"
)


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or RegistrySettings()
    indexes = store.indexes()
    lookups.indexes(indexes)
    import_log.indexes(indexes, store.VOLUNTEERS)
    service = Service(
        "registry",
        settings,
        indexes=indexes,
        outbox_collections=[store.UNITS, store.VOLUNTEERS],
    )
    from services.registry.imports import forms

    app = service.create_app(units, volunteers, forms, title="科技志愿服务平台 · 注册服务", description=DESCRIPTION)
    registry = store.Registry(
        service.db, service.outbox, IdNumberCipher.from_settings(settings), year=settings.campaign_year
    )
    app.state.registry = registry
    app.state.id_lookups = lookups.IdLookups(service.db, settings.id_lookup_daily_limit)
    journal = import_log.ImportLog(service.db, service.outbox, store.VOLUNTEERS, lease_s=settings.import_lease_s)
    app.state.import_log = journal

    async def recover_imports() -> None:
        """At start and then periodically: take back imports whose process died, finish committed ones."""
        while True:
            try:
                await journal.recover()
            except Exception:
                log.warning("import recovery failed; trying again", exc_info=True)
            await asyncio.sleep(settings.import_recovery_interval_s)

    async def backfill() -> None:
        """Documents written before the indexed fields existed get them (once; idempotent on every start)."""
        delay = 0.5
        while True:
            try:
                done = await registry.backfill()
                if done:
                    log.info("registry backfill: %d documents given their index keys", done)
                return
            except Exception:
                log.warning("registry backfill failed; retrying in %.1fs", delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    service.background.append(backfill)
    service.background.append(recover_imports)
    app.add_exception_handler(RegistryError, registry_error_handler)
    return app
