"""The command line's contract: bad arguments and settings are one line and exit 2,
never a traceback; help shows defaults; the light commands never import torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xsmoe.cli import build_parser, command_in

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "faiss")


def xsmoe(
    args: list[str], tmp_path: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m xsmoe ARGS` in a fresh process, in tmp_path, with this checkout's code."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("XSMOE_")}
    clean |= {"PYTHONPATH": str(ROOT), "XSMOE_DATA_DIR": str(tmp_path / "var"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "xsmoe", *args],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


BAD_ARGUMENTS = [
    (["up", "--port", "99999"], {}, "--port"),
    (["serve", "--port", "0"], {}, "--port"),
    (["serve", "--port", "http"], {}, "--port"),
    (["--log-level", "LOUD", "snapshot", "list"], {}, "--log-level"),
    (["snapshot", "list", "--log-level", "LOUD"], {}, "--log-level"),
    (["snapshot", "--snapshot-dir", "no/such/dir", "list"], {}, "--snapshot-dir"),
    (["snapshot", "--redis-url", "http://x", "list"], {}, "--redis-url"),
    (["snapshot", "rollback"], {}, "version"),
    (["--config", "no-such.toml", "snapshot", "list"], {}, "--config"),
    (["features", "build", "--catalog", "no-such.jsonl"], {}, "--catalog"),
    (["bootstrap", "--windows", "-1"], {}, "--windows"),
    (["replay", "--rate", "0"], {}, "--rate"),
    (["replay", "--start", "2"], {}, "--start"),
    (["datasets", "synth", "--image-size", "8"], {}, "--image-size"),
    (["no-such-command"], {}, "no-such-command"),
    ([], {}, "COMMAND"),
    (["snapshot", "list"], {"XSMOE_REDIS_SHARDS": "0"}, "XSMOE_REDIS_SHARDS"),
    (["snapshot", "list"], {"XSMOE_LOG_LEVEL": "LOUD"}, "XSMOE_LOG_LEVEL"),
    (["snapshot", "list"], {"XSMOE_REDIS_URL": "http://x"}, "XSMOE_REDIS_URL"),
    (["snapshot", "list"], {"XSMOE_TEXT__LAYERS": "[0, x]"}, "XSMOE_TEXT__LAYERS"),
    (["config", "show"], {"XSMOE_API__MODE": "prod"}, "XSMOE_API__READ_KEY"),
    (["config", "show"], {"XSMOE_WORKER__WINDOW_EVENTS": "1"}, "XSMOE_WORKER__WINDOW_EVENTS"),
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("args", "env", "named"), BAD_ARGUMENTS)
def test_a_bad_argument_or_setting_is_one_line_and_exit_2(
    args: list[str], env: dict[str, str], named: str, tmp_path: Path
) -> None:
    done = xsmoe(args, tmp_path, env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert named in lines[0]


def test_a_secret_setting_is_never_echoed(tmp_path: Path) -> None:
    env = {"XSMOE_API__MODE": "prod", "XSMOE_API__READ_KEY": " s3cret-but-padded "}
    done = xsmoe(["config", "show"], tmp_path, env)
    assert done.returncode == 2 and "XSMOE_API__READ_KEY" in done.stderr
    assert "s3cret" not in done.stderr


def test_version_help_and_exit_codes(tmp_path: Path) -> None:
    version = xsmoe(["--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("xsmoe ")
    top = xsmoe(["--help"], tmp_path)
    assert top.returncode == 0
    assert (
        "2    usage or configuration error" in top.stdout and "1    runtime failure" in top.stdout
    )
    up = xsmoe(["up", "--help"], tmp_path)
    assert "(default: 8000)" in up.stdout and "(default: 127.0.0.1)" in up.stdout
    listing = xsmoe(["snapshot", "list", "--help"], tmp_path)
    assert listing.returncode == 0 and "--redis-url" in listing.stdout


def test_the_replay_key_default_is_not_printed_in_help(tmp_path: Path) -> None:
    done = xsmoe(["replay", "--help"], tmp_path, {"XSMOE_API__WRITE_KEY": "w" * 32})
    assert done.returncode == 0 and "w" * 32 not in done.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-level", "debug", "snapshot", "list"],
        ["snapshot", "list", "--log-level", "debug"],
        ["snapshot", "--log-level", "debug", "list"],
        ["--log-level", "debug", "snapshot", "list", "--snapshot-dir", "."],
    ],
)
def test_log_level_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser(command_in(argv)).parse_args(argv)
    assert args.command == "snapshot" and args.log_level == "DEBUG"


def test_an_option_after_the_action_counts_too() -> None:
    argv = ["snapshot", "rollback", "v000002", "--redis-url", "redis://h:1/0"]
    args = build_parser(command_in(argv)).parse_args(argv)
    assert args.redis_url == "redis://h:1/0" and args.version == "v000002"


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["snapshot", "list", "--help"],
        ["snapshot", "rollback", "--help"],
        # listing reads manifests, not weights (port 1: refused at once, no real Redis)
        ["snapshot", "list", "--snapshot-dir", ".", "--redis-url", "redis://127.0.0.1:1/0"],
        ["config", "--help"],
        ["datasets", "synth", "--help"],
        ["replay", "--help"],
        ["serve", "--help"],
        ["worker", "--help"],
    ],
)
def test_light_commands_do_not_import_torch(args: list[str], tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from xsmoe.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSMOE_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "HEAVY []" in done.stderr, done.stderr
