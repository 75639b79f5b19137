"""Settings: the generated reference stays current, the TOML file under the environment,
unknown keys refused, no setting that nothing reads."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from xsmoe.cli import main
from xsmoe.common.settings import (
    CONFIG_FILE_ENV,
    IMAGE_BUILTIN,
    OTHER_ROLES_GROUPS,
    TEXT_BUILTIN,
    ConfigFileError,
    Settings,
)
from xsmoe.config_doc import CLI_VARIABLES, DOC_PATH, render, sections
from xsmoe.service.settings import ServiceSettings
from xsmoe.workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[1]
# Settings another part of the project wires up; nothing reads them yet.
NOT_READ_YET = {"api.max_events"}
# Variables of docker-compose.yml (interpolated by compose, never read by xsmoe).
COMPOSE_VARIABLES = {"XSMOE_INPUT_DIR", "XSMOE_PORT", "XSMOE_REDIS_ARGS"}


def test_the_committed_reference_is_the_generated_one() -> None:
    committed = (ROOT / DOC_PATH).read_text()
    assert committed == render(), "docs/configuration.md is stale: run `make config-doc`"


def test_every_variable_the_docs_name_exists() -> None:
    known = {r.env for _, rows in sections() for r in rows} | {v for v, _, _ in CLI_VARIABLES}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        named = set(re.findall(r"XSMOE_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
        # `XSMOE_API__READ_KEY` / `__WRITE_KEY`: the short forms are checked with their group
        unknown = named - known - COMPOSE_VARIABLES
        unknown = {n for n in unknown if not any(k.startswith(n + "__") for k in known)}
        assert not unknown, f"{path.name} names variables no setting has: {sorted(unknown)}"


def test_every_setting_is_read_somewhere() -> None:
    field_line = re.compile(r"^\s+\w+: [^=]+=.*$", re.MULTILINE)  # a definition, not a read
    text = "\n".join(
        field_line.sub("", p.read_text())
        for folder in ("common", "service", "workers", "xsmoe", "bench")
        for p in (ROOT / folder).rglob("*.py")
        if p.name != "config_doc.py" and not any(part.startswith(".") for part in p.parts)
    )
    unread = [
        row.key
        for _, rows in sections()
        for row in rows
        if not re.search(rf"\.{row.key.rsplit('.', 1)[-1]}\b", text) and row.key not in NOT_READ_YET
    ]
    assert not unread, f"settings nothing reads: {unread}"


def test_builtin_encoder_names_match_the_model() -> None:
    from xsmoe.model.encoders import IMAGE_BUILTIN as MODEL_IMAGE
    from xsmoe.model.encoders import TEXT_BUILTIN as MODEL_TEXT

    assert (TEXT_BUILTIN, IMAGE_BUILTIN) == (MODEL_TEXT, MODEL_IMAGE)


def test_other_roles_groups_are_the_api_and_worker_groups() -> None:
    roles = set(ServiceSettings.model_fields) | set(WorkerSettings.model_fields)
    assert roles - set(Settings.model_fields) == OTHER_ROLES_GROUPS


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("XSMOE_"):
            monkeypatch.delenv(name)
    path = tmp_path / "xsmoe.toml"
    monkeypatch.setenv(CONFIG_FILE_ENV, str(path))
    return path


def test_the_file_sets_what_the_environment_does_not(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write_text(
        'redis_prefix = "fromfile"\nredis_shards = 4\n'
        '[text]\nlayers = [0, 2]\n[api]\nmode = "dev"\nmax_history = 50\n'
        "[worker]\nwindow_events = 77\n"
    )
    monkeypatch.setenv("XSMOE_REDIS_SHARDS", "2")
    monkeypatch.setenv("XSMOE_API__MAX_BODY_BYTES", "4096")
    s = ServiceSettings()
    assert s.redis_prefix == "fromfile" and s.redis_shards == 2  # the environment wins
    assert s.text.layers == [0, 2] and s.text.pooling == "mean"  # a group merges key by key
    assert s.api.max_history == 50 and s.api.max_body_bytes == 4096
    assert WorkerSettings().worker.window_events == 77
    assert Settings().redis_prefix == "fromfile"  # a role's group is no unknown key


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("redis_prefx = 'x'\n", "'redis_prefx'"),
        ("[text]\nlayerz = [1]\n", "'text.layerz'"),
        ("[s3]\nregion = 'x'\nbucket = 'y'\n", "'s3.bucket'"),
    ],
)
def test_an_unknown_key_is_an_error_naming_it(config: Path, text: str, named: str) -> None:
    config.write_text(text)
    with pytest.raises(ConfigFileError, match=re.escape(named)):
        Settings()


def test_an_unknown_key_of_a_role_group_is_refused_by_that_role(config: Path) -> None:
    config.write_text("[worker]\nwindow_event = 3\n")
    Settings()  # the API and the common settings do not read [worker]
    with pytest.raises(ConfigFileError, match="'worker.window_event'"):
        WorkerSettings()


def test_a_missing_or_broken_file_is_an_error(config: Path) -> None:
    with pytest.raises(ConfigFileError, match="No such file"):
        Settings()
    config.write_text("redis_url = \n")
    with pytest.raises(ConfigFileError, match="not TOML"):
        Settings()


def test_cli_config_option_lasts_as_long_as_the_command(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(CONFIG_FILE_ENV)
    config.write_text("redis_shards = 3\n[api]\nread_key = 'r' \n")
    assert main(["config", "show", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "XSMOE_REDIS_SHARDS=3  # file" in out and "XSMOE_REDIS_PREFIX=xsmoe  # default" in out
    assert "XSMOE_API__READ_KEY=(set, hidden)  # file" in out
    assert CONFIG_FILE_ENV not in os.environ
    config.write_text("redis_shards = 0\n")
    assert main(["--config", str(config), "config", "show"]) == 2
    err = capsys.readouterr().err
    assert "XSMOE_REDIS_SHARDS (or redis_shards in" in err and str(config.name) in err


def test_log_level_setting_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XSMOE_LOG_LEVEL", "debug")
    assert Settings().log_level == "DEBUG"
