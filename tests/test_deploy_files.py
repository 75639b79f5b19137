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
    assert set(services) == {"redis", "bootstrap", "api", "worker"}
    assert services["redis"]["image"] == "redis:7"
    assert "--appendonly" in services["redis"]["command"] and services["redis"]["healthcheck"]
    for role in ("api", "worker"):
        assert services[role]["build"]["target"] == role
        assert services[role]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "snapshots:/snapshots" in services[role]["volumes"]
    assert "8000-8009" in services["api"]["ports"][0]  # a port range: --scale api=N
    # the bootstrap reads your own files from a mounted folder, named by env settings
    boot = services["bootstrap"]
    assert boot["command"] == ["bootstrap", "--if-missing"]
    assert {"XSMOE_CATALOG", "XSMOE_INTERACTIONS", "XSMOE_DATASET"} <= set(boot["environment"])
    assert any(v.endswith(":/input:ro") for v in boot["volumes"])
    assert services["api"]["environment"]["XSMOE_API__MODE"].startswith("${XSMOE_API__MODE:-prod")
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
