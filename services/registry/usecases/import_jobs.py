"""An upload as a job: accepted at once (its record in the store, so any replica answers its status), then read,
checked and imported by a task of the replica that accepted it, all or nothing as before.

The task writes its counters (rows read, checked, stored, events published) every ``tick_s`` and renews the job's
lease with them. A cancellation marks the record; the task stops at its next step, and an import already writing
is aborted before its commit (the commit is conditional on the import still running), so a cancelled job imported
nothing. Once committed a job can no longer be cancelled: it finishes. (附件1 organisations and 附件3 contacts are
written in one step with nothing pending: they can be cancelled until that step begins.)

A job whose replica died (its lease ran out) is **failed cleanly** by the next recovery pass of any replica, not
taken over: nothing of it was committed (its pending volunteers are deleted by the import log's recovery, which
this pass triggers for it) and the person uploads the file again; a job whose import had committed is finished as
succeeded. Its upload is not kept, so no other replica could redo it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from services.registry.domain.errors import ConflictError, NotFoundError, RegistryError
from services.registry.domain.imports import (
    FormKind,
    JobProgress,
    JobState,
    ParsedForm,
    RowError,
    job_fraction,
    remaining_seconds,
)
from services.registry.domain.scope import Scope
from services.registry.usecases.imports import Counter, Imports
from services.registry.usecases.ports import Doc, ImportJobStore, VolunteerImports

log = logging.getLogger("stvs.registry.import_jobs")

Parse = Callable[[FormKind, bytes, Counter], ParsedForm[Any]]
"""Reads an upload (off the event loop); FileRefusedError for a file refused whole."""
Mark = Callable[[FormKind, bytes, Sequence[RowError]], bytes]
"""The marked copy of a failed upload."""

CANCELLED = "导入已取消，整个文件未导入"
LOST = "处理该导入的服务实例已停止，整个文件未导入，请重新上传"


class JobCancelled(Exception):
    """The job's cancellation was seen at one of its steps."""


class ImportJobs:
    def __init__(
        self,
        imports: Imports,
        store: ImportJobStore,
        journal: VolunteerImports,
        parse: Parse,
        mark: Mark,
        *,
        concurrency: int = 1,
        tick_s: float = 1.0,
        publish_wait_s: float = 300.0,
    ) -> None:
        self.imports = imports
        self.store = store
        self.journal = journal
        self.parse = parse
        self.mark = mark
        self.tick_s = tick_s
        self.publish_wait_s = publish_wait_s
        self.slots = asyncio.Semaphore(concurrency)
        self.tasks: set[asyncio.Task[None]] = set()

    # -- what the routes call ---------------------------------------------------------------------------
    async def start(self, form: FormKind, data: bytes, scope: Scope, *, dry_run: bool, unit_id: str | None) -> Doc:
        """Accept an upload as a job (queued) and start its task in this process."""
        identity = scope.identity
        doc: Doc = {
            "_id": uuid.uuid4().hex,
            "form": form.value,
            "dry_run": dry_run,
            "unit_id": unit_id,
            "owner": identity.subject,
            "state": JobState.QUEUED.value,
            "cancel_requested": False,
            "progress": JobProgress().as_doc(),
            "created_at": _wall(),
        }
        await self.store.create(doc)
        task = asyncio.create_task(self._run(doc["_id"], form, data, scope, dry_run=dry_run, unit_id=unit_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return doc

    async def job(self, job_id: str, scope: Scope) -> Doc:
        """A job as its uploader (or the province) sees it, with how far along it is and an estimate."""
        doc = await self.store.get(job_id)
        if doc is None or not (scope.province or doc["owner"] == scope.identity.subject):
            raise NotFoundError("未找到该导入任务")
        return with_estimate(doc)

    async def cancel(self, job_id: str, scope: Scope) -> Doc:
        """Cancel a job before its import commits (ConflictError once committed or finished)."""
        doc = await self.job(job_id, scope)
        state = JobState(doc["state"])
        if state.finished or state.committed:
            raise ConflictError(f"导入任务{_STATE_SAYS[state]}，不能取消")
        if state is JobState.STORING and doc["form"] != FormKind.VOLUNTEERS.value:
            # 附件1 and 附件3 are written in one step that nothing can stop half way
            raise ConflictError("导入任务正在保存，不能取消")
        await self.store.request_cancel(job_id)
        # an import writing now is aborted: its commit, conditional on it running, then fails
        if await self.journal.cancel(job_id) in ("committed", "done"):
            await self.store.update(job_id, {"cancel_requested": False})
            raise ConflictError("导入已提交，不能取消")
        return await self.job(job_id, scope)

    async def problems(self, job_id: str, scope: Scope) -> list[Doc]:
        await self.job(job_id, scope)
        return await self.store.problems(job_id)

    async def marked(self, job_id: str, scope: Scope) -> bytes:
        doc = await self.job(job_id, scope)
        data = await self.store.file(job_id) if doc.get("has_marked") else None
        if data is None:
            raise NotFoundError("该导入任务没有标注问题的文件（只有因行错误未导入的任务才有）")
        return data

    # -- the task ----------------------------------------------------------------------------------------
    async def _run(
        self, job_id: str, form: FormKind, data: bytes, scope: Scope, *, dry_run: bool, unit_id: str | None
    ) -> None:
        progress = JobProgress()
        async with self._beating(job_id, progress) as cancelled, self.slots:
            try:
                await self._stages(job_id, form, data, scope, progress, cancelled, dry_run=dry_run, unit_id=unit_id)
            except asyncio.CancelledError:  # the process stops: the recovery of another replica settles the rest
                with contextlib.suppress(Exception):
                    if not await self._committed(job_id):
                        await self._finish(job_id, progress, JobState.FAILED, problem=("import_interrupted", LOST))
                raise
            except Exception as failure:
                if await self._committed(job_id):  # imported: what failed after the commit, the recovery finishes
                    await self._finish(job_id, progress, JobState.SUCCEEDED)
                else:
                    await self._failed_by(job_id, progress, cancelled, failure)

    async def _committed(self, job_id: str) -> bool:
        with contextlib.suppress(Exception):
            return await self.journal.state(job_id) in ("committed", "done")
        return False

    async def _failed_by(
        self, job_id: str, progress: JobProgress, cancelled: asyncio.Event, failure: Exception
    ) -> None:
        """The job's end after a failure before its commit: cancelled, refused, or an internal error."""
        if isinstance(failure, JobCancelled) or cancelled.is_set() or await self._cancel_requested(job_id):
            await self._finish(job_id, progress, JobState.CANCELLED, problem=("import_cancelled", CANCELLED))
        elif isinstance(failure, RegistryError):
            await self._finish(job_id, progress, JobState.FAILED, problem=(failure.code, failure.message))
        else:
            log.error("import job %s failed", job_id, exc_info=failure)
            detail = "导入时发生内部错误，整个文件未导入，请稍后重新上传"
            await self._finish(job_id, progress, JobState.FAILED, problem=("import_failed", detail))

    async def _stages(
        self,
        job_id: str,
        form: FormKind,
        data: bytes,
        scope: Scope,
        progress: JobProgress,
        cancelled: asyncio.Event,
        *,
        dry_run: bool,
        unit_id: str | None,
    ) -> None:
        async def step(state: JobState) -> None:
            if cancelled.is_set() or await self._cancel_requested(job_id):
                raise JobCancelled
            await self.store.update(job_id, {"state": state.value, "progress": progress.as_doc()})

        await step(JobState.READING)
        parsed = await asyncio.to_thread(self.parse, form, data, _setter(progress, "read"))
        progress.total = progress.read = parsed.total_rows
        await step(JobState.CHECKING)
        outcome, plan = await self.imports.check(
            parsed, scope, dry_run=dry_run, unit_id=unit_id, checked=_setter(progress, "checked")
        )
        result = {k: v for k, v in asdict(outcome).items() if k not in ("errors", "form")}
        result |= {"form": form.value, "problems": len(outcome.errors)}
        progress.to_store = 0 if dry_run or outcome.errors else outcome.created + outcome.updated
        await self.store.update(job_id, {"result": result, "progress": progress.as_doc()})
        if outcome.errors:
            await self._failed(job_id, form, data, outcome.errors, progress, dry_run=dry_run)
            return
        if dry_run:
            await self._finish(job_id, progress, JobState.SUCCEEDED)
            return
        await step(JobState.STORING)
        ids = await self.imports.commit(form, plan, scope, import_id=job_id, stored=_adder(progress, "stored"))
        progress.to_publish = len(ids)
        await self.store.update(job_id, {"state": JobState.PUBLISHING.value, "progress": progress.as_doc()})
        await self._await_published(ids, progress)
        await self._finish(job_id, progress, JobState.SUCCEEDED)

    async def _cancel_requested(self, job_id: str) -> bool:
        doc = await self.store.get(job_id)
        return bool(doc and doc.get("cancel_requested"))

    async def _failed(
        self,
        job_id: str,
        form: FormKind,
        data: bytes,
        errors: Sequence[RowError],
        progress: JobProgress,
        *,
        dry_run: bool,
    ) -> None:
        """Row problems: the list and the marked copy kept with the job; a dry run with problems succeeded (it
        was only asked what is wrong), an import failed (nothing imported)."""
        await self.store.save_problems(job_id, [problem_doc(e) for e in errors])
        await self.store.save_file(job_id, await asyncio.to_thread(self.mark, form, data, errors))
        rows = len({e.row for e in errors})
        state = JobState.SUCCEEDED if dry_run else JobState.FAILED
        detail = f"文件中有{rows}行共{len(errors)}处错误，整个文件未导入，请下载标注了问题的文件改正后重新上传"
        await self.store.update(job_id, {"has_marked": True})
        await self._finish(job_id, progress, state, problem=None if dry_run else ("form_rows_invalid", detail))

    async def _await_published(self, ids: Sequence[Any], progress: JobProgress) -> None:
        """Count the events handed to Kafka until all are (or ``publish_wait_s`` passed: the outbox still
        publishes them; the job says how many it saw)."""
        deadline = asyncio.get_running_loop().time() + self.publish_wait_s
        while True:
            progress.published = len(ids) - await self.journal.unpublished(ids)
            if progress.published >= len(ids) or asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(self.tick_s)

    async def _finish(
        self, job_id: str, progress: JobProgress, state: JobState, *, problem: tuple[str, str] | None = None
    ) -> None:
        fields: dict[str, Any] = {"state": state.value, "progress": progress.as_doc(), "finished_at": _wall()}
        if problem is not None:
            fields["problem"] = {"code": problem[0], "detail": problem[1]}
        await self.store.update(job_id, fields)

    @contextlib.asynccontextmanager
    async def _beating(self, job_id: str, progress: JobProgress) -> Any:
        """Every ``tick_s``: the counters written (the lease renewed) and a cancellation noticed."""
        cancelled = asyncio.Event()

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.tick_s)
                with contextlib.suppress(Exception):
                    await self.store.update(job_id, {"progress": progress.as_doc()})
                    doc = await self.store.get(job_id)
                    if doc is not None and doc.get("cancel_requested"):
                        cancelled.set()

        task = asyncio.create_task(beat())
        try:
            yield cancelled
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- recovery, by any replica -------------------------------------------------------------------------
    async def recover(self) -> int:
        """Settle the jobs whose replica died: succeeded when their import had committed, else failed (cancelled
        when that was asked) once their import is aborted; returns how many were settled."""
        settled = 0
        for doc in await self.store.abandoned():
            state = await self.journal.cancel(doc["_id"], only_if_dead=True)
            if state == "running":
                continue  # its writer still renews the import's lease: not dead after all
            if state in ("committed", "done"):
                fields: dict[str, Any] = {"state": JobState.SUCCEEDED.value}
            elif doc.get("cancel_requested"):
                fields = {
                    "state": JobState.CANCELLED.value,
                    "problem": {"code": "import_cancelled", "detail": CANCELLED},
                }
            else:
                fields = {"state": JobState.FAILED.value, "problem": {"code": "import_interrupted", "detail": LOST}}
            if await self.store.update(doc["_id"], {**fields, "finished_at": _wall()}):
                settled += 1
        return settled


_STATE_SAYS = {
    JobState.PUBLISHING: "已提交",
    JobState.SUCCEEDED: "已完成",
    JobState.FAILED: "已结束",
    JobState.CANCELLED: "已取消",
}


def _problem(code: str, detail: str) -> dict[str, str]:
    return {"code": code, "detail": detail}


def problem_doc(error: RowError) -> dict[str, Any]:
    return {"sheet": error.sheet, "row": error.row, "column": error.column, "message": error.message}


def with_estimate(doc: Mapping[str, Any]) -> Doc:
    """The record with how far along it is (0…1) and the seconds left at the pace so far (None if unknown)."""
    state = JobState(doc["state"])
    fraction = job_fraction(doc.get("progress") or {}, state)
    started = doc.get("created_at")
    elapsed = (_wall() - started).total_seconds() if started is not None else 0.0
    left = None if state.finished else remaining_seconds(fraction, elapsed)
    return {**doc, "fraction": round(fraction, 3), "remaining_s": None if left is None else round(left, 1)}


def _wall() -> datetime:
    """Technical bookkeeping (how long a job took) is on the wall clock, not the programme's (shared.clock)."""
    return datetime.now(UTC)


def _setter(progress: JobProgress, counter: str) -> Counter:
    def hear(n: int) -> None:
        setattr(progress, counter, n)

    return hear


def _adder(progress: JobProgress, counter: str) -> Counter:
    def hear(n: int) -> None:
        setattr(progress, counter, getattr(progress, counter) + n)

    return hear
