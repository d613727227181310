"""Upload jobs on MongoDB, so any replica answers a job's status: ``import_jobs`` (state, counters, result, the
owner's lease), ``import_job_problems`` (the problems found, in blocks) and ``import_job_files`` (the marked copy
of a failed upload, in blocks well under a document's 16 MB). Everything of a job expires a day after it finishes
(``expires_at``); a job not finished is renewed by its owner with every write of its progress."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from bson import Binary

from services.registry.domain.imports import JobState
from shared.storage import Doc, Indexes, utcnow

JOBS = "import_jobs"
PROBLEMS = "import_job_problems"
FILES = "import_job_files"
PROBLEM_BLOCK = 5_000
FILE_BLOCK = 4 * 1024 * 1024
KEEP = timedelta(days=1)
ACTIVE = [s.value for s in JobState if not s.finished]


def indexes(ix: Indexes) -> None:
    ix.add(JOBS, "state", "lease_until")
    ix.add(JOBS, "expires_at", expire_after_s=0)
    ix.add(PROBLEMS, "job", "block")
    ix.add(PROBLEMS, "expires_at", expire_after_s=0)
    ix.add(FILES, "job", "block")
    ix.add(FILES, "expires_at", expire_after_s=0)


class ImportJobs:
    def __init__(self, db: Any, *, lease_s: float) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_s)

    async def create(self, doc: Doc) -> None:
        await self.db[JOBS].insert_one({**doc, "lease_until": utcnow() + self.lease})

    async def get(self, job_id: str) -> Doc | None:
        doc: Doc | None = await self.db[JOBS].find_one({"_id": job_id})
        return doc

    async def update(self, job_id: str, fields: Mapping[str, Any], *, unless_finished: bool = True) -> bool:
        now = utcnow()
        extra: dict[str, Any] = {"updated_at": now, "lease_until": now + self.lease}
        if JobState(fields.get("state", JobState.QUEUED)).finished:
            extra["expires_at"] = now + KEEP
        match: dict[str, Any] = {"_id": job_id}
        if unless_finished:
            match["state"] = {"$in": ACTIVE}
        result = await self.db[JOBS].update_one(match, {"$set": {**fields, **extra}})
        return bool(result.matched_count)

    async def request_cancel(self, job_id: str) -> Doc | None:
        await self.db[JOBS].update_one({"_id": job_id, "state": {"$in": ACTIVE}}, {"$set": {"cancel_requested": True}})
        return await self.get(job_id)

    async def save_problems(self, job_id: str, problems: Sequence[Mapping[str, Any]]) -> None:
        expires = utcnow() + KEEP
        blocks = [
            {"job": job_id, "block": n, "items": list(problems[start : start + PROBLEM_BLOCK]), "expires_at": expires}
            for n, start in enumerate(range(0, len(problems), PROBLEM_BLOCK))
        ]
        if blocks:
            await self.db[PROBLEMS].insert_many(blocks)

    async def problems(self, job_id: str) -> list[Doc]:
        found: list[Doc] = []
        async for block in self.db[PROBLEMS].find({"job": job_id}).sort("block", 1):
            found.extend(block["items"])
        return found

    async def save_file(self, job_id: str, data: bytes) -> None:
        expires = utcnow() + KEEP
        blocks = [
            {"job": job_id, "block": n, "data": Binary(data[start : start + FILE_BLOCK]), "expires_at": expires}
            for n, start in enumerate(range(0, len(data), FILE_BLOCK))
        ]
        for block in blocks:  # one at a time: each insert a few MB
            await self.db[FILES].insert_one(block)

    async def file(self, job_id: str) -> bytes | None:
        parts = [bytes(b["data"]) async for b in self.db[FILES].find({"job": job_id}).sort("block", 1)]
        return b"".join(parts) if parts else None

    async def abandoned(self) -> list[Doc]:
        query = {"state": {"$in": ACTIVE}, "lease_until": {"$lt": utcnow()}}
        return [doc async for doc in self.db[JOBS].find(query)]
