"""`make run REPLICAS=n`: which processes the supervisor starts, where they listen, how the gateway finds them."""

from __future__ import annotations

import pytest

from infra.local.runner import Endpoints, InfraError
from infra.local.supervisor import _service_env, instances, replicas_from_env

ENDPOINTS = Endpoints(kafka_bootstrap="127.0.0.1:9092", mongo_url="mongodb://127.0.0.1:27017/")


def test_one_replica_is_the_platform_as_before() -> None:
    assert instances(1) == {
        "registry": ("registry", 8001),
        "activities": ("activities", 8002),
        "reporting": ("reporting", 8003),
        "notifier": ("notifier", 8004),
        "gateway": ("gateway", 8000),
    }
    env = _service_env(ENDPOINTS, 8000, 1)
    assert env["STVS_REGISTRY_URL"] == "http://127.0.0.1:8001" and env["STVS_HTTP_REUSE_PORT"] == "false"


def test_two_replicas_of_every_service_the_gateways_sharing_one_address() -> None:
    procs = instances(2)
    assert len(procs) == 10
    assert procs["registry-2"] == ("registry", 8011) and procs["notifier-2"] == ("notifier", 8014)
    assert procs["gateway"] == procs["gateway-2"] == ("gateway", 8000)
    env = _service_env(ENDPOINTS, 8000, 2)
    assert env["STVS_ACTIVITIES_URL"] == "http://127.0.0.1:8002,http://127.0.0.1:8012"
    assert env["STVS_HTTP_REUSE_PORT"] == "true"


@pytest.mark.parametrize("value", ["0", "9", "two", "-1"])
def test_a_replica_count_out_of_range_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("STVS_REPLICAS", value)
    with pytest.raises(InfraError, match="STVS_REPLICAS"):
        replicas_from_env()
