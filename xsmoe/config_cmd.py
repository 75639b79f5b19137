"""`xsmoe config reference | show`: every setting, and the values in effect."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from xsmoe.cli_args import Parser, add_command, load_settings
from xsmoe.common.redis_url import redacted
from xsmoe.common.settings import CONFIG_FILE_ENV, Settings, read_config_file


def register(cmd: Parser) -> None:
    cmd.description = __doc__
    sub = cmd.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    reference = add_command(
        sub, "reference", help="every setting as markdown (what docs/configuration.md holds)"
    )
    reference.add_argument("--out", type=Path, help="write it here instead of stdout")
    reference.add_argument(
        "--check",
        type=Path,
        metavar="FILE",
        help="exit 1 if FILE differs from the reference (a stale committed copy)",
    )
    reference.set_defaults(handler=run_reference)
    show = add_command(
        sub,
        "show",
        help="the value of every setting and where it comes from (env, file, default); "
        "checks every role's settings, secrets hidden",
    )
    show.set_defaults(handler=run_show)


def run_reference(args: argparse.Namespace, settings: Settings) -> int:
    from xsmoe.config_doc import render

    text = render()
    if args.check is not None:
        if not args.check.is_file() or args.check.read_text() != text:
            print(f"{args.check} is stale: run `make config-doc`", file=sys.stderr)  # noqa: T201
            return 1
        return 0
    if args.out is not None:
        args.out.write_text(text)
        print(f"wrote {args.out}")  # noqa: T201 - the CLI's own output
        return 0
    sys.stdout.write(text)
    return 0


def _value(model: BaseModel, key: str) -> Any:
    value: Any = model
    for part in key.split("."):
        value = getattr(value, part)
    if isinstance(value, SecretStr):
        return "(set, hidden)"
    return redacted(value) if isinstance(value, str) else value  # a Redis URL's password


def _in_file(data: dict[str, Any], key: str) -> bool:
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    from xsmoe.config_doc import sections
    from xsmoe.service.settings import ServiceSettings
    from xsmoe.workers.settings import WorkerSettings

    service, worker = load_settings(ServiceSettings), load_settings(WorkerSettings)
    path = os.environ.get(CONFIG_FILE_ENV)
    data = read_config_file(Path(path)) if path else {}
    for title, rows in sections():
        print(f"# {title}")  # noqa: T201 - the CLI's own output
        for row in rows:
            model: BaseModel = worker if row.key.startswith("worker.") else service
            if row.env in os.environ:
                source = "env"
            elif _in_file(data, row.key):
                source = "file"
            else:
                source = "default"
            print(f"{row.env}={_value(model, row.key)}  # {source}")  # noqa: T201
    return 0
