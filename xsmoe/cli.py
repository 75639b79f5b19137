"""`xsmoe` console script: parse arguments, dispatch to a command module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from xsmoe import (
    bootstrap_cmd,
    datasets_cmd,
    eval_cmd,
    features_cmd,
    replay_cmd,
    serve_cmd,
    snapshot_cmd,
    tune_cmd,
    up_cmd,
    worker_cmd,
)
from xsmoe.common.logs import setup_logging
from xsmoe.common.settings import Settings
from xsmoe.common.snapshot_store import StoreError
from xsmoe.model.errors import EncoderLoadError, ModelError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xsmoe",
        description="Online multimodal recommendation with expandable side experts.",
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (XSMOE_LOG_LEVEL)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    features_cmd.register(commands)
    datasets_cmd.register(commands)
    eval_cmd.register(commands)
    tune_cmd.register(commands)
    bootstrap_cmd.register(commands)
    serve_cmd.register(commands)
    worker_cmd.register(commands)
    snapshot_cmd.register(commands)
    up_cmd.register(commands)
    replay_cmd.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    setup_logging(args.log_level or settings.log_level)
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    try:
        return int(args.handler(args, settings))
    except EncoderLoadError as exc:
        setting = f"XSMOE_{exc.modality.upper()}__{exc.field.upper()}"
        print(f"error: {exc} (setting {setting})", file=sys.stderr)  # noqa: T201
        return 2
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's own output
        return 2
    except StoreError as exc:
        print(f"error: {exc} (snapshot store unavailable; try again)", file=sys.stderr)  # noqa: T201
        return 3
