"""Shared test fixtures.

``infra``: a real Kafka and MongoDB-protocol server for the whole session (DESIGN.md §2), found in this order:
``STVS_KAFKA_BOOTSTRAP`` + ``STVS_MONGO_URL``; else testcontainers when ``STVS_TESTCONTAINERS=1`` and a Docker
engine answers; else the local runner on test ports (Kafka 19092/19093, SecantusDB 27018) with a data dir wiped at
session start, so ``make test`` runs beside ``make run``. Not autouse: tests that need infrastructure ask for it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import pytest

from infra.local.runner import REPO_ROOT, Endpoints, InfraError, InfraRunner, InfraSettings, PortInUseError

pytest_plugins = ["tests.fixtures"]  # fixtures shared by every test package

TEST_KAFKA_PORT = 19092
TEST_KAFKA_CONTROLLER_PORT = 19093
TEST_MONGO_PORT = 27018
TEST_DATA_DIR = REPO_ROOT / ".stvs" / "test-infra"


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]  # comes with testcontainers

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def _testcontainers() -> Iterator[Endpoints]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.mongodb import MongoDbContainer

    with KafkaContainer().with_kraft() as kafka, MongoDbContainer("mongo:7") as mongo:
        yield Endpoints(kafka_bootstrap=kafka.get_bootstrap_server(), mongo_url=mongo.get_connection_url())


@contextlib.contextmanager
def _local_runner() -> Iterator[Endpoints]:
    settings = InfraSettings(
        kafka_port=TEST_KAFKA_PORT,
        kafka_controller_port=TEST_KAFKA_CONTROLLER_PORT,
        mongo_port=TEST_MONGO_PORT,
        data_dir=TEST_DATA_DIR,
        ready_timeout_s=120,
    )
    runner = InfraRunner(settings, fresh=True)
    try:
        endpoints = runner.start()
    except PortInUseError as exc:
        # The test ports are fixed here, so the runner's "set STVS_..._PORT" advice does not apply.
        raise InfraError(
            f"Port {exc.port} of the test infrastructure is in use. Stop what uses it, or point the tests at "
            "running infrastructure with STVS_KAFKA_BOOTSTRAP and STVS_MONGO_URL."
        ) from exc
    try:
        yield endpoints
    finally:
        runner.stop()


@pytest.fixture(scope="session")
def infra() -> Iterator[Endpoints]:
    """Kafka and MongoDB endpoints for the session; also exported as STVS_KAFKA_BOOTSTRAP / STVS_MONGO_URL."""
    given = os.environ.get("STVS_KAFKA_BOOTSTRAP"), os.environ.get("STVS_MONGO_URL")
    source: contextlib.AbstractContextManager[Endpoints]
    if given[0] and given[1]:
        source = contextlib.nullcontext(Endpoints(kafka_bootstrap=given[0], mongo_url=given[1]))
    elif os.environ.get("STVS_TESTCONTAINERS") == "1" and _docker_answers():
        source = _testcontainers()
    else:
        source = _local_runner()  # also honours one of the two variables if only one is set
    with source as endpoints, pytest.MonkeyPatch.context() as mp:
        mp.setenv("STVS_KAFKA_BOOTSTRAP", endpoints.kafka_bootstrap)
        mp.setenv("STVS_MONGO_URL", endpoints.mongo_url)
        yield endpoints


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault tests' figures (``CHAOS …`` lines), shown whether they passed or failed."""
    support = sys.modules.get("tests.resilience.support")  # loaded only when the fault tests ran
    lines: list[str] = getattr(support, "FIGURES", [])
    if lines:
        terminalreporter.section("fault-test figures")
        for line in lines:
            terminalreporter.write_line(line)
