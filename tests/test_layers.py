"""The folders show the data flow: model/ knows no HTTP or Redis, and service/
and workers/ never import each other. Everything is imported as xsmoe.<folder>;
"cli" stands for the rest of xsmoe (the command line, the embedded servers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB_AND_STORAGE = {"fastapi", "starlette", "uvicorn", "redis", "httpx"}
FORBIDDEN = {
    "model": WEB_AND_STORAGE | {"service", "workers", "common", "cli"},
    "common": {"fastapi", "redis", "service", "workers", "cli"},
    "service": {"workers", "cli"},
    "workers": {"service", "cli"},
}
LAYERS = set(FORBIDDEN)


def _layer(module: str) -> str:
    """xsmoe.service.app -> service; xsmoe.cli -> cli; numpy.linalg -> numpy."""
    parts = module.split(".")
    if parts[0] != "xsmoe":
        return parts[0]
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "cli"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(_layer(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(_layer(node.module))
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_respect_the_data_flow(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    for path in files:
        bad = _imports(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def _absolute_imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_folders_are_imported_only_as_xsmoe_packages() -> None:
    """Nothing generic (model, service, ...) is a top-level import: the wheel installs
    xsmoe.model, xsmoe.service, ... only. xsmoe/<folder> are symlinks, not walked."""
    assert all((ROOT / "xsmoe" / layer).is_symlink() for layer in LAYERS)
    files = [p for d in [*LAYERS, "tests", "bench"] for p in (ROOT / d).rglob("*.py")]
    files += (ROOT / "xsmoe").glob("*.py")
    for path in sorted(files):
        bare = [n for n in _absolute_imports(path) if n.split(".")[0] in LAYERS]
        assert not bare, f"{path.relative_to(ROOT)} imports {bare}: use xsmoe.<folder>"
