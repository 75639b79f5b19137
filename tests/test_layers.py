"""The folders show the data flow: model/ knows no HTTP or Redis, and service/
and workers/ never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB_AND_STORAGE = {"fastapi", "starlette", "uvicorn", "redis", "httpx"}
FORBIDDEN = {
    "model": WEB_AND_STORAGE | {"service", "workers", "common", "xsmoe"},
    "common": {"fastapi", "redis", "service", "workers", "xsmoe"},
    "service": {"workers", "xsmoe"},
    "workers": {"service", "xsmoe"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_respect_the_data_flow(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    for path in files:
        bad = _imports(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
