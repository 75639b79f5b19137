"""xsmoe-client stays light: httpx and pydantic only, and nothing of the server."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "client"
HEAVY = ("torch", "fastapi", "starlette", "uvicorn", "redis", "faiss", "numpy", "xsmoe")


def test_the_distribution_depends_on_httpx_and_pydantic_only() -> None:
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    names = {
        re.split(r"[\s<>=!~;\[]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]
    }
    assert project["name"] == "xsmoe-client"
    assert names == {"httpx", "pydantic"}
    assert "optional-dependencies" not in project
    assert (CLIENT / "src" / "xsmoe_client" / "py.typed").is_file()


def test_no_client_module_imports_the_server() -> None:
    files = sorted((CLIENT / "src").rglob("*.py"))
    assert len(files) > 5
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            bad = [n for n in names if n.split(".")[0] in HEAVY]
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_importing_the_client_loads_no_server_module() -> None:
    code = (
        "import json, sys, xsmoe_client;"
        "from xsmoe_client import AsyncClient, Client;"
        "Client('http://127.0.0.1:1').close();"
        "print(json.dumps(sorted(sys.modules)))"
    )
    # Only the client's source on the path: not the checkout, whose xsmoe is the server.
    env = {"PYTHONPATH": str(CLIENT / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=CLIENT, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    modules = json.loads(out.stdout)
    assert "xsmoe_client" in modules and "httpx" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert loaded == [], f"importing xsmoe_client loaded {loaded}"
