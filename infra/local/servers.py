"""The two servers the runner starts: Kafka (KRaft, from Maven Central's jars) and SecantusDB (built by cargo)."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import IO, Any

from infra.local.base import (
    _HERE,
    KAFKA_VERSION,
    SECANTUS_VERSION,
    InstallError,
    StartError,
    _cache_lock,
    _hash_files,
    _install_atomically,
    _run_tool,
    _Server,
    heartbeat,
    log,
)


class KafkaServer(_Server):
    """Apache Kafka, single node, KRaft (broker and controller in one JVM)."""

    name = "kafka"
    log_name = "kafka.log"

    @property
    def pom(self) -> Path:
        return _HERE / "kafka" / "pom.xml"

    @property
    def libs(self) -> Path:
        return self.settings.cache_dir / f"kafka-{KAFKA_VERSION}-{_hash_files(self.pom)}" / "libs"

    @property
    def port(self) -> int:
        return self.settings.kafka_port

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.settings.kafka_port}"

    def installed(self) -> bool:
        return (self.libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()

    def missing_tools(self) -> dict[str, str]:
        missing: dict[str, str] = {}
        java = shutil.which("java")
        if java is None:
            missing["java"] = "runs the local Kafka broker; install a Java 17+ runtime (or set STVS_KAFKA_BOOTSTRAP)"
        elif (major := _java_major(java)) is not None and major < 17:
            missing["java"] = f"Kafka {KAFKA_VERSION} needs Java 17 or newer, found Java {major}"
        if not self.installed() and shutil.which("mvn") is None:
            missing["mvn"] = (
                f"downloads Kafka {KAFKA_VERSION} from Maven Central once into {self.settings.cache_dir}; "
                "install Maven (or set STVS_KAFKA_BOOTSTRAP)"
            )
        return missing

    def ports(self) -> list[tuple[int, str, str]]:
        return [
            (self.settings.kafka_port, "STVS_KAFKA_PORT", "the Kafka broker"),
            (self.settings.kafka_controller_port, "STVS_KAFKA_CONTROLLER_PORT", "the Kafka controller"),
        ]

    def install(self) -> None:
        if self.installed():
            return
        dist = self.libs.parent

        def build(tmp: Path) -> None:
            log.info("downloading Kafka %s from Maven Central into %s (once, about a minute)", KAFKA_VERSION, dist)
            shutil.copy(self.pom, tmp / "pom.xml")
            cmd = ["mvn", "-q", "-B", "-f", str(tmp / "pom.xml"), "dependency:copy-dependencies"]
            cmd += [f"-DoutputDirectory={tmp / 'libs'}", "-DincludeScope=runtime"]
            _run_tool(cmd, "Kafka download (mvn)", tmp / "mvn.log")
            if not (tmp / "libs" / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
                raise InstallError(f"mvn finished but kafka_2.13-{KAFKA_VERSION}.jar is missing in {tmp / 'libs'}")
            for extra in ("pom.xml", "mvn.log", "target"):
                path = tmp / extra
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)

        with _cache_lock(self.settings.cache_dir):
            if not self.installed():
                _install_atomically(dist, f"Kafka {KAFKA_VERSION}", build)

    @property
    def properties(self) -> Path:
        return self.data_dir / "server.properties"

    def prepare(self, log_file: IO[bytes]) -> None:
        s = self.settings
        log_dir = self.data_dir / "data"
        log_dir.mkdir(parents=True, exist_ok=True)
        # Rendered at every start so a port change applies to existing data.
        self.properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={log_dir}",
                    "num.partitions=3",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=3",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "message.max.bytes=2097152",
                    "",
                ]
            )
        )
        if (log_dir / "meta.properties").exists():
            return  # formatted before: formatting again would refuse or lose data
        cluster_id = "-"
        while cluster_id.startswith("-"):  # the tool's argument parser would take a leading "-" for an option
            cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        cmd = ["java", "-cp", f"{self.libs}/*", "kafka.tools.StorageTool", "format"]
        cmd += ["-t", cluster_id, "-c", str(self.properties)]
        log_file.write(f"$ {' '.join(cmd)}\n".encode())
        log_file.flush()
        code = subprocess.run(cmd, stdout=log_file, stderr=subprocess.STDOUT, timeout=120).returncode
        if code != 0:
            raise StartError(f"formatting Kafka storage in {log_dir} failed (exit {code})")

    def command(self) -> list[str]:
        heap = self.settings.kafka_heap
        return [
            "java",
            f"-Xmx{heap}",
            "-Xms256m",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_HERE / 'kafka' / 'log4j2.yaml'}",
            "-cp",
            f"{self.libs}/*",
            "kafka.Kafka",
            str(self.properties),
        ]

    async def probe(self, endpoint: str) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=endpoint, request_timeout_ms=5000)
        try:
            await admin.start()
            # A broker answers metadata before it has registered with the controller; only then it serves.
            cluster = await admin.describe_cluster()
            if not cluster.get("brokers"):
                raise StartError("Kafka answers but has no registered broker yet")
            await admin.list_topics()
        finally:
            await admin.close()


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    for token in out.split('"')[1:2]:  # openjdk version "17.0.15" / "1.8.0_392"
        parts = token.split(".")
        with contextlib.suppress(ValueError):
            return int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(parts[0])
    return None


class SecantusServer(_Server):
    """SecantusDB (``secantusd-rs``): the MongoDB wire protocol over WiredTiger, single node advertising a one-member
    replica set (what transactions and change streams need). Built once from crates.io with cargo."""

    name = "secantus"
    log_name = "secantus.log"

    @property
    def binary(self) -> Path:
        return self.settings.cache_dir / f"secantus-{SECANTUS_VERSION}" / "bin" / "secantusd-rs"

    @property
    def port(self) -> int:
        return self.settings.mongo_port

    @property
    def endpoint(self) -> str:
        return f"mongodb://127.0.0.1:{self.settings.mongo_port}/"

    def installed(self) -> bool:
        return os.access(self.binary, os.X_OK)

    def missing_tools(self) -> dict[str, str]:
        if self.installed() or shutil.which("cargo") is not None:
            return {}
        return {
            "cargo": f"builds SecantusDB {SECANTUS_VERSION} (the local MongoDB-protocol server) once into "
            f"{self.settings.cache_dir}; install Rust with cargo (or set STVS_MONGO_URL to use an existing MongoDB)"
        }

    def ports(self) -> list[tuple[int, str, str]]:
        return [(self.settings.mongo_port, "STVS_MONGO_PORT", "SecantusDB (MongoDB protocol)")]

    def install(self) -> None:
        if self.installed():
            return
        dist = self.binary.parent.parent

        def build(tmp: Path) -> None:
            log.info("building SecantusDB %s into %s with cargo (once; 10-17 min on 2 cores)", SECANTUS_VERSION, dist)
            cmd = ["cargo", "install", "secantus-mdb", "--version", SECANTUS_VERSION, "--locked"]
            cmd += ["--ignore-rust-version", "--root", str(tmp), "--bin", "secantusd-rs"]
            # Its own target dir inside the temporary root: a half build is never reused, and nothing is left over.
            env = {**os.environ, "CARGO_TARGET_DIR": str(tmp / "target")}
            log_path = tmp / "cargo-install.log"
            with heartbeat(f"building SecantusDB {SECANTUS_VERSION}", log_path):
                _run_tool(cmd, "SecantusDB build (cargo install)", log_path, env=env, timeout_s=3600)
            for extra in ("target", ".crates.toml", ".crates2.json", "cargo-install.log"):
                path = tmp / extra
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)

        with _cache_lock(self.settings.cache_dir):
            if not self.installed():
                _install_atomically(dist, f"SecantusDB {SECANTUS_VERSION}", build)

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.settings.mongo_port),
            "--storage-path",
            str(self.data_dir),
            "--cache-size",
            self.settings.mongo_cache,
            "--log-level",
            "WARNING",
        ]

    async def probe(self, endpoint: str) -> None:
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(endpoint, serverSelectionTimeoutMS=2000)
        try:
            hello = await client.admin.command("hello")
            if not hello.get("setName"):
                raise StartError("the MongoDB-protocol server answers but advertises no replica set")
        finally:
            await client.close()
