"""docker-compose.yml and docker/Dockerfile describe the production layout."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_has_redis_with_aof_api_replicas_one_worker_and_a_snapshot_volume() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    default = {name for name, s in services.items() if not s.get("profiles")}
    assert default == {"redis", "bootstrap", "api", "lb", "worker"}
    assert services["redis"]["image"] == "redis:7"
    assert "--appendonly yes" in " ".join(services["redis"]["command"])
    assert services["redis"]["healthcheck"]
    for role in ("api", "worker"):
        assert services[role]["build"]["target"] == role
        assert services[role]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "snapshots:/snapshots" in services[role]["volumes"]
    # Replicas are reached through the load balancer, which finds every one of them.
    assert "ports" not in services["api"] and services["lb"]["ports"] == [
        "${XSMOE_PORT:-8000}:8000"
    ]
    haproxy = (ROOT / "docker" / "haproxy.cfg").read_text()
    assert "server-template api 10 api:8000" in haproxy and "GET /readyz" in haproxy
    # the bootstrap reads your own files from a mounted folder, named by env settings
    boot = services["bootstrap"]
    assert boot["command"] == ["bootstrap", "--if-missing"]
    assert {"XSMOE_CATALOG", "XSMOE_INTERACTIONS", "XSMOE_DATASET"} <= set(boot["environment"])
    assert any(v.endswith(":/input:ro") for v in boot["volumes"])
    assert services["api"]["environment"]["XSMOE_API__MODE"].startswith("${XSMOE_API__MODE:-prod")
    env = doc["x-xsmoe-env"]
    assert env["XSMOE_REDIS_URL"].startswith("${XSMOE_REDIS_URL:-redis://redis:6379/0")


def test_compose_profiles_for_sentinel_and_object_storage() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    ha = sorted(n for n, s in services.items() if "ha" in s.get("profiles", []))
    assert ha == ["redis-replica-1", "redis-replica-2", "sentinel-1", "sentinel-2", "sentinel-3"]
    assert "sentinel monitor xsmoe redis 6379 2" in " ".join(services["sentinel-1"]["command"])
    assert "--replicaof" in services["redis-replica-1"]["command"]
    s3 = sorted(n for n, s in services.items() if "s3" in s.get("profiles", []))
    assert s3 == ["s3", "s3-bucket"] and "-s3" in services["s3"]["command"]


def test_dockerfile_builds_the_two_roles() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "AS api" in dockerfile and "AS worker" in dockerfile
    assert "download.pytorch.org/whl/cpu" in dockerfile and "dinov2_onnx.build" in dockerfile


@pytest.mark.skipif(
    not shutil.which("docker-compose"), reason="needs docker-compose (apt install docker-compose)"
)
def test_docker_compose_config_validates() -> None:
    result = subprocess.run(
        ["docker-compose", "config", "--quiet"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
