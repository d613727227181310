"""The local infrastructure runner against real processes, and docker-compose.yml against the settings.

The runner tests use their own data dirs and free ports (never the `make run`/`make test` ones) and reuse
the download cache, so only the very first run on a machine downloads and builds.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic_settings import BaseSettings
from pymongo import MongoClient

from infra.local.runner import (
    REPO_ROOT,
    AlreadyRunningError,
    Endpoints,
    InfraRunner,
    InfraSettings,
    MissingToolError,
    PortInUseError,
    StartError,
    port_free,
)

PYTHON_SERVICES = ["registry", "activities", "reporting", "notifier", "gateway"]
TOPIC = "stvs.test.runner"


def _free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.add(s.getsockname()[1])
    return sorted(ports)


def _settings(data_dir: Path, **overrides: Any) -> InfraSettings:
    kafka, controller, mongo = _free_ports(3)
    values: dict[str, Any] = {
        "kafka_port": kafka,
        "kafka_controller_port": controller,
        "mongo_port": mongo,
        "data_dir": data_dir,
        "kafka_bootstrap": None,
        "mongo_url": None,
        "ready_timeout_s": 120,
    }
    return InfraSettings(**(values | overrides))


def _mongo(url: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(url, serverSelectionTimeoutMS=5000)


# --- errors an operator sees --------------------------------------------------------------------------------


def test_missing_tools_are_named_and_nothing_is_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    cache = tmp_path / "cache"
    runner = InfraRunner(_settings(tmp_path / "data", cache_dir=cache))

    with pytest.raises(MissingToolError) as caught:
        runner.start()

    assert set(caught.value.tools) == {"java", "mvn", "cargo"}
    for tool, purpose in [("java", "Kafka"), ("mvn", "Maven Central"), ("cargo", "SecantusDB")]:
        assert f"- {tool}: " in str(caught.value)
        assert purpose in str(caught.value)
    assert not cache.exists() or not any(cache.iterdir()), "no download may be attempted"
    with pytest.raises(MissingToolError):  # the failed start released the data dir
        runner.start()


def test_with_a_filled_cache_only_java_is_needed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = InfraRunner(_settings(tmp_path / "data", cache_dir=tmp_path / "cache"))
    jar = runner.kafka.libs / "kafka_2.13-4.4.0.jar"
    jar.parent.mkdir(parents=True)
    jar.touch()
    runner.mongo.binary.parent.mkdir(parents=True)
    runner.mongo.binary.touch(mode=0o755)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))

    with pytest.raises(MissingToolError) as caught:
        runner.install()

    assert caught.value.tools == ["java"]


@pytest.mark.parametrize(
    ("field", "setting"),
    [
        ("kafka_port", "STVS_KAFKA_PORT"),
        ("kafka_controller_port", "STVS_KAFKA_CONTROLLER_PORT"),
        ("mongo_port", "STVS_MONGO_PORT"),
    ],
)
def test_a_taken_port_is_named_with_its_setting(tmp_path: Path, field: str, setting: str) -> None:
    cache = tmp_path / "cache"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runner = InfraRunner(_settings(tmp_path / "data", cache_dir=cache, **{field: port}))

        with pytest.raises(PortInUseError) as caught:
            runner.start()

    assert caught.value.port == port
    assert str(port) in str(caught.value)
    assert setting in str(caught.value)
    assert not cache.exists() or not any(cache.iterdir()), "ports are checked before any download"


def test_unreachable_given_infrastructure_fails_clearly(tmp_path: Path) -> None:
    kafka, mongo = _free_ports(2)
    settings = _settings(
        tmp_path / "data",
        kafka_bootstrap=f"127.0.0.1:{kafka}",
        mongo_url=f"mongodb://127.0.0.1:{mongo}/",
        ready_timeout_s=2,
    )

    with pytest.raises(StartError, match="not ready within 2 s"):
        InfraRunner(settings).start()

    assert not (tmp_path / "data").exists(), "nothing is started (or locked) for given infrastructure"


# --- real processes -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InfraRunner, Endpoints]]:
    """A runner on a temporary data dir with free ports (started once for the tests below)."""
    runner = InfraRunner(_settings(tmp_path_factory.mktemp("infra") / "data"))
    endpoints = runner.start()
    yield runner, endpoints
    runner.stop()


async def test_started_servers_answer_real_clients(first_run: tuple[InfraRunner, Endpoints]) -> None:
    _, endpoints = first_run
    admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap)
    await admin.start()
    try:
        assert (await admin.describe_cluster())["brokers"]
    finally:
        await admin.close()
    with _mongo(endpoints.mongo_url) as client:
        assert client.admin.command("ping")["ok"] == 1


def test_the_mongodb_server_is_a_replica_set_with_transactions(first_run: tuple[InfraRunner, Endpoints]) -> None:
    """What the services rely on: a replica set (so transactions and change streams), atomic updates."""
    _, endpoints = first_run
    with _mongo(endpoints.mongo_url) as client:
        assert client.admin.command("hello").get("setName"), "no replica set advertised"
        things = client["stvs_runner_check"]["things"]
        things.insert_one({"_id": "a", "n": 0})
        with client.start_session() as session, session.start_transaction():
            things.update_one({"_id": "a"}, {"$inc": {"n": 1}}, session=session)
            things.insert_one({"_id": "b", "n": 1}, session=session)
        assert sorted((d["_id"], d["n"]) for d in things.find()) == [("a", 1), ("b", 1)]
        client.drop_database("stvs_runner_check")


def test_second_runner_on_the_same_data_dir_is_refused(first_run: tuple[InfraRunner, Endpoints]) -> None:
    runner, _ = first_run
    second = InfraRunner(_settings(runner.settings.data_dir))

    with pytest.raises(AlreadyRunningError, match="already using"):
        second.start()

    assert all(port_free(p) for p in (second.settings.kafka_port, second.settings.mongo_port))


def test_given_endpoints_start_nothing(tmp_path: Path, first_run: tuple[InfraRunner, Endpoints]) -> None:
    _, endpoints = first_run
    settings = _settings(tmp_path / "data", kafka_bootstrap=endpoints.kafka_bootstrap, mongo_url=endpoints.mongo_url)

    with InfraRunner(settings) as given:
        assert given == endpoints
        assert not (tmp_path / "data").exists()


async def test_restart_keeps_data_without_reformatting(first_run: tuple[InfraRunner, Endpoints]) -> None:
    runner, endpoints = first_run
    await _write_message(endpoints.kafka_bootstrap)
    with _mongo(endpoints.mongo_url) as client:
        client["stvs_restart"]["docs"].insert_one({"_id": "kept", "v": 42})
    meta = (runner.kafka.data_dir / "data" / "meta.properties").read_text()

    runner.stop()
    assert port_free(runner.settings.kafka_port)
    assert port_free(runner.settings.mongo_port)
    again = InfraRunner(runner.settings)
    started = time.monotonic()
    try:
        assert again.start() == endpoints  # the lock was released: no AlreadyRunningError
        restart_s = time.monotonic() - started
        with _mongo(endpoints.mongo_url) as client:
            assert client["stvs_restart"]["docs"].find_one({"_id": "kept"}) == {"_id": "kept", "v": 42}
        assert await _read_message(endpoints.kafka_bootstrap) == b"kept"
        assert (runner.kafka.data_dir / "data" / "meta.properties").read_text() == meta
    finally:
        again.stop()
    assert restart_s < 60, f"a start with a warm cache took {restart_s:.0f} s"


async def _write_message(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC, b"kept", key=b"k")
    finally:
        await producer.stop()


async def _read_message(bootstrap: str) -> bytes:
    consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
        value: bytes = record.value
        return value
    finally:
        await consumer.stop()


# --- docker-compose.yml --------------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services: dict[str, Any] = data["services"]
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_compose_has_every_service_with_a_healthcheck() -> None:
    services = _compose()
    for name in [*PYTHON_SERVICES, "kafka", "mongo", "jaeger"]:
        assert name in services, f"{name} missing from docker-compose.yml"
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    published = [name for name, svc in services.items() if svc.get("ports") and name in PYTHON_SERVICES]
    assert published == ["gateway"], "only the gateway is reachable from outside"
    for name in PYTHON_SERVICES:
        env = _environment(services[name])
        assert env["STVS_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["STVS_MONGO_URL"].startswith("mongodb://mongo:27017")
        assert env["SERVICE"] == name
        assert "STVS_HTTP_PORT" in env


def _settings_env_names(module_name: str) -> set[str]:
    """Environment variable names read by the pydantic-settings classes defined in a module."""
    module = importlib.import_module(module_name)
    names: set[str] = set()
    for obj in vars(module).values():
        if not (isinstance(obj, type) and issubclass(obj, BaseSettings) and obj.__module__ == module_name):
            continue
        prefix = str(obj.model_config.get("env_prefix", ""))
        for field_name, info in obj.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, str):
                names.add(alias.upper())
            elif alias is not None and hasattr(alias, "choices"):
                names.add(str(next(c for c in alias.choices if isinstance(c, str))).upper())
            else:
                names.add(f"{prefix}{field_name}".upper())
    return {name for name in names if name.startswith("STVS_")}


def test_compose_environment_covers_every_setting() -> None:
    if importlib.util.find_spec("shared.settings") is None:
        pytest.skip("shared/settings.py does not exist yet: nothing to compare docker-compose.yml against")
    common = _settings_env_names("shared.settings")
    services = _compose()
    missing: dict[str, set[str]] = {}
    for name in PYTHON_SERVICES:
        wanted = set(common)
        if (REPO_ROOT / "services" / name / "settings.py").is_file():
            wanted |= _settings_env_names(f"services.{name}.settings")
        if gaps := wanted - set(_environment(services[name])):
            missing[name] = gaps
    assert not missing, f"settings not given to services in docker-compose.yml: {missing}"
