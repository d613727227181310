"""An upload as a job, on the in-memory ports: it runs to the end in its task (counters complete, volunteers
registered), a file with problems fails with the list and the marked copy and imports nothing, a cancellation
before the commit imports nothing, a job is its uploader's (and the province's), and a job whose replica died is
failed cleanly or finished."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.registry.domain.errors import ConflictError, NotFoundError
from services.registry.domain.imports import FileRefusedError, FormKind, ParsedForm, RowError, VolunteerRow
from services.registry.domain.volunteers import validate_volunteer
from services.registry.usecases.import_jobs import ImportJobs
from services.registry.usecases.imports import Counter
from tests.registry.usecases.builders import PROVINCE, Registry, World, admin_of, person
from tests.registry.usecases.memory import MemoryImports, MemoryJobs

SHEET = "科技志愿者集体注册信息表"


def form_of(rows: Sequence[VolunteerRow], errors: Sequence[RowError] = ()) -> ParsedForm[VolunteerRow]:
    numbers = list(range(2, len(rows) + 2))
    headers = {"id_number": "身份证号码", "unit_name": "所属队伍"}
    return ParsedForm(FormKind.VOLUNTEERS, SHEET, list(rows), numbers, list(errors), len(rows), headers)


class Files:
    """Stands in for the spreadsheet adapter: an upload's bytes name a prepared parse."""

    def __init__(self) -> None:
        self.parsed: dict[bytes, ParsedForm[Any]] = {}
        self.marked: list[Sequence[RowError]] = []

    def parse(self, form: FormKind, data: bytes, read: Counter) -> ParsedForm[Any]:
        if data not in self.parsed:
            raise FileRefusedError("not_xlsx", "文件不是 Excel（.xlsx）格式，请使用下载的模板填写")
        parsed = self.parsed[data]
        read(parsed.total_rows)
        return parsed

    def mark(self, form: FormKind, data: bytes, problems: Sequence[RowError]) -> bytes:
        self.marked.append(problems)
        return b"marked:" + data


@pytest.fixture
def files() -> Files:
    return Files()


@pytest.fixture
def jobs(registry: Registry, files: Files) -> ImportJobs:
    bulk = registry.imports.bulk
    assert isinstance(bulk, MemoryImports)
    return ImportJobs(registry.imports, MemoryJobs(), bulk, files.parse, files.mark, tick_s=0.01)


async def run_to_end(jobs: ImportJobs, job_id: str, scope: Any) -> dict[str, Any]:
    await asyncio.gather(*jobs.tasks)
    return await jobs.job(job_id, scope)


def rows(*seqs: int) -> list[VolunteerRow]:
    return [VolunteerRow(profile=validate_volunteer(person(s))) for s in seqs]


async def test_a_job_imports_whole_and_counts_every_step(
    registry: Registry, world: World, jobs: ImportJobs, files: Files
) -> None:
    files.parsed[b"three"] = form_of(rows(1, 2, 3))
    admin = admin_of(world.county)
    events = len(registry.store.events)
    job = await jobs.start(FormKind.VOLUNTEERS, b"three", admin, dry_run=False, unit_id=None)
    assert job["state"] == "queued"
    done = await run_to_end(jobs, job["_id"], admin)
    assert done["state"] == "succeeded" and done["fraction"] == 1.0 and done["remaining_s"] is None
    assert done["progress"] == {
        "total": 3, "read": 3, "checked": 3, "to_store": 3, "stored": 3, "to_publish": 3, "published": 3
    }  # fmt: skip
    assert done["result"]["created"] == 3 and done["result"]["problems"] == 0
    assert len(registry.store.volunteers) == 3 and len(registry.store.events) == events + 3
    # the uploader and the province read it; another admin does not learn it exists
    assert (await jobs.job(job["_id"], PROVINCE))["state"] == "succeeded"
    with pytest.raises(NotFoundError):
        await jobs.job(job["_id"], admin_of(world.city))
    with pytest.raises(ConflictError):  # done: nothing left to cancel
        await jobs.cancel(job["_id"], admin)


async def test_a_file_with_problems_fails_marked_and_imports_nothing(
    registry: Registry, world: World, jobs: ImportJobs, files: Files
) -> None:
    wrong = RowError(SHEET, 3, "手机号码", "手机号码应为11位数字")
    files.parsed[b"bad"] = form_of(rows(1), [wrong])
    admin = admin_of(world.county)
    job = await jobs.start(FormKind.VOLUNTEERS, b"bad", admin, dry_run=False, unit_id=None)
    done = await run_to_end(jobs, job["_id"], admin)
    assert done["state"] == "failed" and done["problem"]["code"] == "form_rows_invalid", done
    assert done["has_marked"] and done["progress"]["stored"] == 0
    assert await jobs.problems(job["_id"], admin) == [
        {"sheet": SHEET, "row": 3, "column": "手机号码", "message": "手机号码应为11位数字"}
    ]
    assert await jobs.marked(job["_id"], admin) == b"marked:bad" and files.marked == [[wrong]]
    assert registry.store.volunteers == {}


async def test_a_dry_run_with_problems_succeeds_and_keeps_the_list(
    world: World, jobs: ImportJobs, files: Files
) -> None:
    files.parsed[b"bad"] = form_of(rows(1), [RowError(SHEET, 3, "性别", "性别只能填写男或女")])
    job = await jobs.start(FormKind.VOLUNTEERS, b"bad", PROVINCE, dry_run=True, unit_id=world.county)
    done = await run_to_end(jobs, job["_id"], PROVINCE)
    assert done["state"] == "succeeded" and "problem" not in done
    assert done["result"]["problems"] == 1 and len(await jobs.problems(job["_id"], PROVINCE)) == 1


async def test_a_file_refused_whole_fails_without_a_marked_copy(world: World, jobs: ImportJobs) -> None:
    admin = admin_of(world.county)
    job = await jobs.start(FormKind.VOLUNTEERS, b"junk", admin, dry_run=False, unit_id=None)
    done = await run_to_end(jobs, job["_id"], admin)
    assert done["state"] == "failed" and done["problem"]["code"] == "form_not_xlsx"
    with pytest.raises(NotFoundError):
        await jobs.marked(job["_id"], admin)


async def test_a_job_cancelled_before_its_commit_imports_nothing(
    registry: Registry, world: World, jobs: ImportJobs, files: Files
) -> None:
    files.parsed[b"three"] = form_of(rows(1, 2, 3))
    admin = admin_of(world.county)
    async with jobs.slots:  # the replica busy: queued
        job = await jobs.start(FormKind.VOLUNTEERS, b"three", admin, dry_run=False, unit_id=None)
        asked = await jobs.cancel(job["_id"], admin)
        assert asked["cancel_requested"] and asked["state"] == "queued"
    done = await run_to_end(jobs, job["_id"], admin)
    assert done["state"] == "cancelled" and done["problem"]["code"] == "import_cancelled"
    assert registry.store.volunteers == {}


async def test_an_import_cancelled_before_it_began_is_refused_when_it_would(
    registry: Registry, world: World, jobs: ImportJobs
) -> None:
    """The race of a cancellation with the start of the writing: the writer's import of that id never begins."""
    bulk = registry.imports.bulk
    assert isinstance(bulk, MemoryImports)
    assert await bulk.cancel("j1") == "aborted"
    plan_rows = form_of(rows(1))
    _, plan = await registry.imports.check(plan_rows, PROVINCE, dry_run=False, unit_id=world.county)
    with pytest.raises(Exception, match="导入已取消"):
        await registry.imports.commit(FormKind.VOLUNTEERS, plan, PROVINCE, import_id="j1")
    assert registry.store.volunteers == {}


async def test_a_job_whose_replica_died_is_failed_cleanly_or_finished(registry: Registry, jobs: ImportJobs) -> None:
    store = jobs.store
    assert isinstance(store, MemoryJobs)
    bulk = registry.imports.bulk
    assert isinstance(bulk, MemoryImports)
    past = datetime.now(UTC) - timedelta(minutes=5)
    for job_id, state in (("lost", "storing"), ("committed", "publishing"), ("asked", "reading")):
        await store.create({"_id": job_id, "state": state, "owner": "x", "created_at": past})
        store.jobs[job_id]["lease_until"] = past
    store.jobs["asked"]["cancel_requested"] = True
    bulk.states["committed"] = "done"
    assert await jobs.recover() == 3
    assert store.jobs["lost"]["state"] == "failed" and store.jobs["lost"]["problem"]["code"] == "import_interrupted"
    assert store.jobs["committed"]["state"] == "succeeded"
    assert store.jobs["asked"]["state"] == "cancelled"
    assert bulk.states["lost"] == "aborted"  # a writer still alive somewhere can no longer begin it


class FlipFails(MemoryImports):
    """Commits, then fails making the volunteers visible (a database timeout): the recovery finishes that."""

    async def insert_all(self, owner: str, jobs: Sequence[Any], build: Any, **kwargs: Any) -> list[Any]:
        await super().insert_all(owner, jobs, build, **kwargs)
        raise TimeoutError("the flip timed out")


async def test_a_failure_after_the_commit_is_no_failure_of_the_job(
    registry: Registry, world: World, files: Files
) -> None:
    bulk = FlipFails(registry.store)
    registry.imports.bulk = bulk
    jobs = ImportJobs(registry.imports, MemoryJobs(), bulk, files.parse, files.mark, tick_s=0.01)
    files.parsed[b"three"] = form_of(rows(1, 2, 3))
    job = await jobs.start(FormKind.VOLUNTEERS, b"three", PROVINCE, dry_run=False, unit_id=world.county)
    done = await run_to_end(jobs, job["_id"], PROVINCE)
    assert done["state"] == "succeeded" and "problem" not in done, done
