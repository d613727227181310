"""The Kubernetes deployment stays valid and true to the code: ``deploy/helm/stvs`` and ``deploy/monitoring``.

- ``helm lint --strict`` and ``helm template`` of the chart with its default values and with each ``ci/*-values.yaml``
  (three replicas, Ingress, network policies…; Kafka and MongoDB that exist already);
- every rendered manifest validated offline against the Kubernetes JSON schemas (``kubernetes-validate``, strict:
  no unknown field) of the oldest Kubernetes the chart supports and of the newest the package knows. Operator
  resources (Strimzi ``Kafka``/``KafkaNodePool``/``KafkaTopic``, ``MongoDBCommunity``, ``ServiceMonitor``) have no
  schema there: they are skipped by name and their essential fields checked here instead;
- the chart against the code: every setting each service reads reaches its Deployment, secrets only from Secrets,
  the topics equal ``shared.messaging.topics`` with the chart's settings, the streams in values.yaml equal ``STREAMS``;
- ``promtool check rules`` and ``promtool test rules`` of the alerts; the alerts and the dashboard use only metrics
  that ``shared/metrics.py`` defines.

Helm and promtool are built once by ``make install`` (``python -m infra.tools install``); a missing one FAILS these
tests with that instruction, it never skips them.
"""

from __future__ import annotations

import base64
import copy
import functools
import importlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from pydantic import SecretStr

import shared.metrics
from infra import keys, tools
from shared.contracts.events import STREAMS
from shared.messaging.topics import DLQ_PARTITIONS, all_topics, topic_config
from shared.settings import ServiceSettings, decode_key

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "stvs"
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "stvs-alerts.yaml"
RULE_TESTS = MONITORING / "stvs-alerts.test.yaml"
DASHBOARD = MONITORING / "stvs-dashboard.json"

SERVICES = ("registry", "activities", "reporting", "notifier", "gateway")
RELEASE, NAMESPACE = "stvs", "stvs"
KUBE_RENDER_VERSION = "1.33.0"  # given to helm template (a Helm built with `go install` assumes 1.20)
KUBE_VERSIONS = ("1.27", kubernetes_validate.utils.latest_version())  # Chart.yaml kubeVersion >=1.27; the newest
# Custom resources: no schema in kubernetes-validate; each is checked by a test below.
OPERATOR_KINDS = {"Kafka", "KafkaNodePool", "KafkaTopic", "MongoDBCommunity", "ServiceMonitor"}
# Refused with STVS_PRODUCTION=true: the chart never sets them.
NOT_IN_PRODUCTION = {"STVS_CLOCK_START", "STVS_CLOCK_ANCHOR"}

# name -> (values files, replicas every Deployment must have)
VALUE_SETS: dict[str, tuple[list[str], int]] = {
    "default": ([], 2),
    "replicas-3": (["ci/replicas-3-values.yaml"], 3),
    "external": (["ci/external-values.yaml"], 2),
    "small": (["ci/small-values.yaml"], 1),
}

Doc = dict[str, Any]


# --- tools ------------------------------------------------------------------------------------------------


def tool(name: str) -> Path:
    if problem := tools.missing(name):
        pytest.fail(problem, pytrace=False)
    return tools.path(name)


def run(cmd: list[str | Path], cwd: Path | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, cwd=cwd, check=False)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}", pytrace=False
        )
    return done.stdout


@functools.cache
def values(name: str) -> Doc:
    """The values a value set renders with (values.yaml with its files merged over, as Helm does)."""

    def merge(base: Doc, over: Doc) -> Doc:
        for key, value in over.items():
            base[key] = merge(base.get(key) or {}, value) if isinstance(value, dict) else value
        return base

    merged: Doc = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    for path in VALUE_SETS[name][0]:
        merged = merge(merged, yaml.safe_load((CHART / path).read_text(encoding="utf-8")))
    return merged


@functools.cache
def _render(name: str) -> str:
    files = [arg for path in VALUE_SETS[name][0] for arg in ("-f", str(CHART / path))]
    helm = tool("helm")
    return run(
        [helm, "template", RELEASE, CHART, "--namespace", NAMESPACE, "--kube-version", KUBE_RENDER_VERSION, *files]
    )


@functools.cache
def _parsed(name: str) -> list[Doc]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [d for d in yaml.load_all(_render(name), Loader=loader) if d]


def render(name: str) -> list[Doc]:
    """The manifests helm template renders with a value set (a copy: tests may change theirs)."""
    return copy.deepcopy(_parsed(name))


def of_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def one(docs: list[Doc], kind: str) -> Doc:
    found = list(of_kind(docs, kind).values())
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def deployment(docs: list[Doc], service: str) -> Doc:
    return of_kind(docs, "Deployment")[f"{RELEASE}-{service}"]


def container(docs: list[Doc], service: str) -> Doc:
    containers = deployment(docs, service)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def env_of(docs: list[Doc], service: str) -> dict[str, Doc]:
    env = container(docs, service)["env"]
    names = [e["name"] for e in env]
    assert len(names) == len(set(names)), f"{service}: a variable is set twice: {names}"
    return {e["name"]: e for e in env}


def settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"services.{service}.settings")
    found = [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, ServiceSettings)]
    return max(found, key=lambda c: len(c.__mro__))


def setting_names(service: str) -> set[str]:
    return {f"STVS_{name.upper()}" for name in settings_class(service).model_fields}


def secret_names(service: str) -> dict[str, bool]:
    """STVS_ name -> required, of every secret the service reads."""
    found: dict[str, bool] = {}
    for name, field in settings_class(service).model_fields.items():
        annotation = field.annotation
        if annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ()):
            found[f"STVS_{name.upper()}"] = annotation is SecretStr
    return found


value_sets = pytest.mark.parametrize("value_set", list(VALUE_SETS))


@pytest.fixture(scope="module", autouse=True)
def _schemas_read_once() -> Iterator[None]:
    """kubernetes-validate reads its (megabytes of) schema files on every call: read each once (5-9x faster)."""
    original = kubernetes_validate.utils.schema_contents
    kubernetes_validate.utils.schema_contents = functools.cache(original)
    try:
        yield
    finally:
        kubernetes_validate.utils.schema_contents = original


# --- helm lint, template, schemas -------------------------------------------------------------------------


@value_sets
def test_helm_lint(value_set: str) -> None:
    files = [arg for path in VALUE_SETS[value_set][0] for arg in ("-f", str(CHART / path))]
    out = run([tool("helm"), "lint", "--strict", CHART, "--kube-version", KUBE_RENDER_VERSION, *files])
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("serviceDefaults.replica=3", "additional properties 'replica' not allowed"),
        ("config.STVS_NAMESPACE=Hebei-Prod", "does not match pattern"),
        ("services.gateway.port=0", "minimum"),
        ("secrets.STVS_JWT_SECRETS.value=x", "additional properties 'STVS_JWT_SECRETS' not allowed"),
    ],
)
def test_values_schema_refuses_a_wrong_value(setting: str, complaint: str) -> None:
    cmd = [tool("helm"), "template", RELEASE, CHART, "--kube-version", KUBE_RENDER_VERSION, "--set", setting]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0 and complaint in done.stderr, done.stderr


@value_sets
def test_every_manifest_is_valid_kubernetes(value_set: str) -> None:
    docs = render(value_set)
    checked = 0
    for doc in docs:
        if doc["kind"] in OPERATOR_KINDS:
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} (Kubernetes {version}): {where}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                pytest.fail(f"no Kubernetes schema for {exc.kind} {exc.api_version}: a custom resource? {exc.message}")
        checked += 1
    assert checked >= 4 * len(SERVICES), f"only {checked} manifests validated"


@value_sets
def test_every_service_runs_replicated_with_probes_resources_hpa_pdb(value_set: str) -> None:
    docs, replicas = render(value_set), VALUE_SETS[value_set][1]
    deployments, services = of_kind(docs, "Deployment"), of_kind(docs, "Service")
    hpas, pdbs = of_kind(docs, "HorizontalPodAutoscaler"), of_kind(docs, "PodDisruptionBudget")
    assert set(deployments) == {f"{RELEASE}-{s}" for s in SERVICES}
    for service in SERVICES:
        name = f"{RELEASE}-{service}"
        dep, c, env = deployment(docs, service), container(docs, service), env_of(docs, service)
        port = int(env["STVS_HTTP_PORT"]["value"])
        assert dep["spec"]["replicas"] == replicas
        assert c["command"] == ["python", "-m", f"services.{service}"]
        assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["resources"]["requests"]["memory"] == "192Mi" and c["resources"]["limits"]["memory"] == "512Mi"
        assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["cpu"]
        assert env["STVS_PRODUCTION"]["value"] == "true"
        assert env["STVS_HTTP_HOST"]["value"] == "0.0.0.0"
        pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        selector = dep["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()
        # the ClusterIP Service, the autoscaler and the disruption budget of this Deployment
        svc = services[name]
        assert svc["spec"]["type"] == "ClusterIP"
        assert svc["spec"]["selector"] == selector
        assert svc["spec"]["ports"][0]["port"] == port and svc["spec"]["ports"][0]["targetPort"] == "http"
        hpa = hpas[name]["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert hpa["minReplicas"] == replicas <= hpa["maxReplicas"]
        assert pdbs[name]["spec"]["selector"]["matchLabels"] == selector
        assert pdbs[name]["spec"]["maxUnavailable"] == 1
        # another service's pods never match (PDBs and Services would mix them)
        others = [d for n, d in deployments.items() if n != name]
        assert not any(selector.items() <= d["spec"]["template"]["metadata"]["labels"].items() for d in others)


@value_sets
def test_every_setting_reaches_the_service_that_reads_it(value_set: str) -> None:
    docs = render(value_set)
    for service in SERVICES:
        env = env_of(docs, service)
        missing = setting_names(service) - NOT_IN_PRODUCTION - set(env)
        smtp = values(value_set)["secrets"]["STVS_SMTP_PASSWORD"]
        if not (smtp["value"] or smtp["existingSecret"]):  # no SMTP password given: the notifier signs in to none
            missing -= {"STVS_SMTP_PASSWORD"}
        assert not missing, f"{service} is not given {sorted(missing)}"
        assert not (NOT_IN_PRODUCTION & set(env))


@value_sets
def test_secrets_come_from_secrets_and_every_reference_resolves(value_set: str) -> None:
    docs = render(value_set)
    chart_secrets = {name: doc.get("data", {}) for name, doc in of_kind(docs, "Secret").items()}
    mongo = of_kind(docs, "MongoDBCommunity")
    for service in SERVICES:
        env = env_of(docs, service)
        for name, required in {**secret_names(service), "STVS_MONGO_URL": True}.items():
            mongodb = values(value_set)["mongodb"]
            if name == "STVS_MONGO_URL" and not mongodb["enabled"] and not mongodb["existingSecret"]:
                continue  # a plain URL given as a value (no password in it, we hope)
            if name not in env:
                assert not required, f"{service}: secret {name} is not set"
                continue
            assert "value" not in env[name], f"{service}: {name} is written into the Deployment"
            ref = env[name]["valueFrom"]["secretKeyRef"]
            if ref["name"] in chart_secrets:
                assert ref["key"] in chart_secrets[ref["name"]], f"{service}: {name} -> missing key {ref}"
            elif name == "STVS_MONGO_URL" and mongo:
                users = next(iter(mongo.values()))["spec"]["users"]
                services_user = next(u for u in users if u["name"] == values(value_set)["mongodb"]["user"])
                wanted_ref = {"name": services_user["connectionStringSecretName"], "key": "connectionString.standard"}
                assert ref == wanted_ref
            else:
                wanted = mongodb if name == "STVS_MONGO_URL" else values(value_set)["secrets"][name]
                assert ref["name"] == wanted["existingSecret"], f"{service}: {name} from an unknown Secret {ref}"
    # generated keys: a 32-byte URL-safe base64 key where one is expected
    if value_set == "default":
        data = chart_secrets[f"{RELEASE}-secrets"]
        for key in ("STVS_ID_ENCRYPTION_KEY", "STVS_WEBHOOK_SECRET_KEY"):
            assert len(decode_key(base64.b64decode(data[key]).decode())) == 32
        for key in ("STVS_INTERNAL_TOKEN", "STVS_JWT_SECRET", "STVS_ID_HASH_KEY"):
            assert len(base64.b64decode(data[key])) >= 32


@value_sets
def test_the_gateway_and_reporting_find_the_services_in_the_cluster(value_set: str) -> None:
    docs = render(value_set)
    services = of_kind(docs, "Service")
    for service in ("gateway", "reporting"):
        env = env_of(docs, service)
        for upstream in ("registry", "activities", "reporting", "notifier"):
            svc = services[f"{RELEASE}-{upstream}"]
            port = svc["spec"]["ports"][0]["port"]
            assert env[f"STVS_{upstream.upper()}_URL"]["value"] == f"http://{RELEASE}-{upstream}:{port}"
    # behind the Ingress, the gateway takes the caller's address from X-Forwarded-For (the rate limits key on it)
    assert env_of(docs, "gateway")["STVS_TRUSTED_PROXIES"]["value"]


@value_sets
def test_the_services_start_in_production_mode_with_these_settings(
    value_set: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each service's settings accept the chart's environment and pass the production checks with the chart's
    secrets (generated, or given as values); a Secret that exists outside the chart stands in as a strong key."""
    docs = render(value_set)
    chart_secrets = {name: doc.get("data", {}) for name, doc in of_kind(docs, "Secret").items()}
    stand_in = base64.urlsafe_b64encode(bytes(range(32))).decode()  # 44 characters, 32 bytes, many distinct
    for service in SERVICES:
        with monkeypatch.context() as m:
            for name, entry in env_of(docs, service).items():
                if "value" in entry:
                    m.setenv(name, entry["value"])
                    continue
                ref = entry["valueFrom"]["secretKeyRef"]
                if ref["name"] in chart_secrets:
                    m.setenv(name, base64.b64decode(chart_secrets[ref["name"]][ref["key"]]).decode())
                else:
                    m.setenv(name, stand_in)
            m.setenv("STVS_MONGO_URL", "mongodb://stvs:pw@mongo-0.mongo-svc:27017/admin?replicaSet=stvs")
            settings = settings_class(service)()
            settings.check_production()
            assert settings.production and settings.http_host == "0.0.0.0"
            assert settings.operator_networks(), "no address may read /readyz: the readiness probes would fail"


# --- Kafka (Strimzi) --------------------------------------------------------------------------------------


def test_the_chart_knows_every_secret_the_services_read() -> None:
    every = {name for service in SERVICES for name in secret_names(service)}
    assert set(values("default")["secrets"]) == every
    assert set(keys.SECRETS) <= every  # what `make keys` writes (.env), to load as one existingSecret


def test_topic_settings_default_to_the_single_broker_topics() -> None:
    """Outside Kubernetes nothing changes: 6 partitions, replication 1, events forever, DLQs 30 days on 1 partition."""
    settings = ServiceSettings()
    assert (settings.topic_partitions, settings.topic_replication, settings.dlq_retention_days) == (6, 1, 30)
    assert topic_config("stvs.registry.units", settings) == {"retention.ms": "-1"}
    assert topic_config("stvs.registry.units.dlq", settings) == {"retention.ms": str(30 * 24 * 3600 * 1000)}
    assert DLQ_PARTITIONS == 1
    three = ServiceSettings(topic_replication=3)
    assert topic_config("stvs.registry.units", three) == {"retention.ms": "-1", "min.insync.replicas": "2"}


def test_the_streams_in_values_are_the_code_streams() -> None:
    assert values("default")["kafka"]["topics"]["streams"] == list(STREAMS)


@pytest.mark.parametrize("value_set", ["default", "replicas-3"])
def test_kafka_is_a_replicated_kraft_cluster(value_set: str) -> None:
    docs = render(value_set)
    kafka, pool = one(docs, "Kafka"), one(docs, "KafkaNodePool")
    assert kafka["apiVersion"] == pool["apiVersion"] == "kafka.strimzi.io/v1"
    spec = kafka["spec"]
    config = spec["kafka"]["config"]
    assert config["min.insync.replicas"] == 2
    assert config["default.replication.factor"] == 3
    assert config["offsets.topic.replication.factor"] == 3
    assert config["transaction.state.log.replication.factor"] == 3
    assert config["auto.create.topics.enable"] is False
    assert spec["kafka"]["version"] and spec["kafka"]["metadataVersion"]
    listeners = {item["name"]: item for item in spec["kafka"]["listeners"]}
    assert listeners["plain"] == {"name": "plain", "port": 9092, "type": "internal", "tls": False}
    assert "topicOperator" in spec["entityOperator"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert pool["spec"]["replicas"] == 3
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    volumes = pool["spec"]["storage"]["volumes"]
    assert pool["spec"]["storage"]["type"] == "jbod" and volumes[0]["kraftMetadata"] == "shared"
    assert volumes[0]["type"] == "persistent-claim" and volumes[0]["deleteClaim"] is False
    for service in SERVICES:
        bootstrap = env_of(docs, service)["STVS_KAFKA_BOOTSTRAP"]["value"]
        assert bootstrap == f"{kafka['metadata']['name']}-kafka-bootstrap:9092"


@pytest.mark.parametrize("value_set", ["default", "replicas-3", "small"])
def test_the_topics_are_those_the_code_creates(value_set: str) -> None:
    docs = render(value_set)
    kafka = one(docs, "Kafka")["metadata"]["name"]
    t = values(value_set)["kafka"]["topics"]
    env = env_of(docs, "registry")
    settings = ServiceSettings(
        namespace=values(value_set)["config"]["STVS_NAMESPACE"],
        topic_partitions=int(env["STVS_TOPIC_PARTITIONS"]["value"]),
        topic_replication=int(env["STVS_TOPIC_REPLICATION"]["value"]),
        dlq_retention_days=int(env["STVS_DLQ_RETENTION_DAYS"]["value"]),
    )
    assert (settings.topic_partitions, settings.topic_replication) == (t["partitions"], t["replicas"])
    topics = {d["spec"]["topicName"]: d for d in of_kind(docs, "KafkaTopic").values()}
    assert sorted(topics) == sorted(all_topics(settings))
    for name, doc in topics.items():
        assert doc["apiVersion"] == "kafka.strimzi.io/v1"
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == kafka
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"]), doc["metadata"]["name"]
        dlq = name.endswith(".dlq")
        assert doc["spec"]["partitions"] == (DLQ_PARTITIONS if dlq else settings.topic_partitions)
        assert doc["spec"]["replicas"] == settings.topic_replication
        assert {k: str(v) for k, v in doc["spec"]["config"].items()} == topic_config(name, settings)
    retention = {name: int(doc["spec"]["config"]["retention.ms"]) for name, doc in topics.items()}
    assert all(v == -1 for n, v in retention.items() if not n.endswith(".dlq"))
    assert all(v == 30 * 24 * 3600 * 1000 for n, v in retention.items() if n.endswith(".dlq"))
    if value_set == "small":  # one broker: the Kafka defaults agree with the topics
        config = one(docs, "Kafka")["spec"]["kafka"]["config"]
        assert config["default.replication.factor"] == config["min.insync.replicas"] == t["replicas"] == 1


# --- MongoDB (MongoDB Community) --------------------------------------------------------------------------


@pytest.mark.parametrize("value_set", ["default", "replicas-3"])
def test_mongodb_is_a_replica_set_with_a_user_for_the_services(value_set: str) -> None:
    docs = render(value_set)
    mongo = one(docs, "MongoDBCommunity")
    spec = mongo["spec"]
    assert mongo["apiVersion"] == "mongodbcommunity.mongodb.com/v1"
    assert spec["type"] == "ReplicaSet" and spec["members"] == 3
    assert spec["version"].startswith("7.")
    assert "SCRAM" in spec["security"]["authentication"]["modes"]
    users = {u["name"]: u for u in spec["users"]}
    assert set(users) == {"stvs", "stvs-backup"}
    secrets = of_kind(docs, "Secret")
    for u in users.values():
        assert u["db"] == "admin" and u["scramCredentialsSecretName"] and u["connectionStringSecretName"]
        assert u["passwordSecretRef"]["key"] in secrets[u["passwordSecretRef"]["name"]]["data"]
    assert len({u["scramCredentialsSecretName"] for u in users.values()}) == len(users)
    assert sorted(r["name"] for r in users["stvs-backup"]["roles"]) == ["backup", "restore"]
    user = users["stvs"]
    settings = ServiceSettings(namespace=values(value_set)["config"]["STVS_NAMESPACE"])
    assert sorted((r["name"], r["db"]) for r in user["roles"]) == sorted(
        ("readWrite", settings.database(s)) for s in SERVICES
    )
    for service in SERVICES:
        ref = env_of(docs, service)["STVS_MONGO_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": user["connectionStringSecretName"], "key": "connectionString.standard"}
    names = {t["metadata"]["name"] for t in spec["statefulSet"]["spec"]["volumeClaimTemplates"]}
    assert names == {"data-volume", "logs-volume"}


def test_existing_kafka_and_mongodb_render_no_operator_resources() -> None:
    docs = render("external")
    assert not [d["kind"] for d in docs if d["kind"] in OPERATOR_KINDS]
    v = values("external")
    for service in SERVICES:
        env = env_of(docs, service)
        assert env["STVS_KAFKA_BOOTSTRAP"]["value"] == v["kafka"]["bootstrap"]
        assert env["STVS_MONGO_URL"]["valueFrom"]["secretKeyRef"] == {"name": "stvs-mongodb", "key": "url"}
    assert not of_kind(docs, "Secret"), "every key comes from an existing Secret: the chart makes none"


# --- Ingress, network policies, ServiceMonitor ------------------------------------------------------------


def test_ingress_network_policies_and_service_monitor() -> None:
    docs = render("replicas-3")
    assert not of_kind(render("default"), "Ingress"), "the Ingress is off by default"
    (ingress,) = of_kind(docs, "Ingress").values()
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{RELEASE}-gateway", "port": {"name": "http"}}
    policies = of_kind(docs, "NetworkPolicy")
    assert set(policies) == {f"{RELEASE}-{s}" for s in SERVICES}
    gateway_labels = deployment(docs, "gateway")["spec"]["selector"]["matchLabels"]
    for service in ("activities", "notifier"):
        sources = [src for rule in policies[f"{RELEASE}-{service}"]["spec"]["ingress"] for src in rule.get("from", [])]
        pods = [s["podSelector"]["matchLabels"] for s in sources if "podSelector" in s]
        assert pods == [gateway_labels]
    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    for service in SERVICES:
        labels = of_kind(docs, "Service")[f"{RELEASE}-{service}"]["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()


# --- Prometheus rules and the Grafana dashboard ----------------------------------------------------------


def metric_names() -> set[str]:
    """Every sample name the services can expose (shared/metrics.py)."""
    names: set[str] = set()
    for obj in vars(shared.metrics).values():
        if not isinstance(obj, MetricWrapperBase):
            continue
        for family in obj.describe():
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
            names |= {family.name + s for s in suffixes[family.type]}
    return names


def exprs() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            yield rule.get("alert") or rule["record"], rule["expr"]
    for panel in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_promtool_check_rules() -> None:
    out = run([tool("promtool"), "check", "rules", RULES])
    assert "SUCCESS" in out


def test_promtool_unit_tests_of_the_alerts(tmp_path: Path) -> None:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # the tests expect labels only (see stvs-alerts.test.yaml)
    (tmp_path / RULES.name).write_text(yaml.safe_dump(rules), encoding="utf-8")
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text(encoding="utf-8"), encoding="utf-8")
    run([tool("promtool"), "test", "rules", RULE_TESTS.name], cwd=tmp_path)
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text(encoding="utf-8")))
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts <= tested, f"alerts without a unit test: {sorted(alerts - tested)}"


def test_alerts_and_dashboard_use_only_metrics_that_exist() -> None:
    known = metric_names()
    assert {"stvs_consumer_lag", "stvs_outbox_backlog", "stvs_http_request_seconds_bucket"} <= known
    seen: set[str] = set()
    for where, expr in exprs():
        used = set(re.findall(r"\bstvs_[a-z_]+", expr))
        assert used, f"{where}: no stvs metric in {expr!r}"
        assert used <= known, f"{where}: unknown metrics {sorted(used - known)}"
        seen |= used
    wanted = {"stvs_consumer_lag", "stvs_outbox_backlog", "stvs_events_dead_lettered_total"}
    assert wanted | {"stvs_http_request_seconds_bucket", "stvs_http_request_seconds_count"} <= seen


def test_the_dashboard_is_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert any(v["type"] == "datasource" for v in dashboard["templating"]["list"])
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys()
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
