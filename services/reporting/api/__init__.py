"""HTTP API of the reporting service, one module per resource: compliance, statistics, reports (with their events),
exports, certificates, charts."""

from __future__ import annotations

from fastapi import APIRouter

from . import certificates, charts, compliance, exports, reports, review, stats

router = APIRouter()
for _module in (compliance, stats, reports, review, exports, certificates, charts):
    router.include_router(_module.router)
