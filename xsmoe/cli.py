"""`xsmoe` console script: parse arguments, dispatch to a command module.

A command's module (and with it torch, for most) is imported only when that
command runs: `xsmoe --help`, `--version`, `snapshot` and `config` start fast.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from xsmoe.cli_args import (
    EXIT_CODES,
    Formatter,
    Parser,
    UsageError,
    add_command,
    common_options,
    load_settings,
)
from xsmoe.common.settings import CONFIG_FILE_ENV, ConfigFileError, Settings
from xsmoe.model.errors import EncoderLoadError, ModelError

# name -> (module, one-line help, loads the model stack)
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "features": ("features_cmd", "item feature store", True),
    "datasets": ("datasets_cmd", "generated datasets", False),
    "eval": (
        "eval_cmd",
        "streaming evaluation of the variants (HR/NDCG@10,20) on one dataset",
        True,
    ),
    "tune": (
        "tune_cmd",
        "choose hyper-parameters on the validation tails (never on test windows)",
        True,
    ),
    "bootstrap": (
        "bootstrap_cmd",
        "train XSMoE on the first time windows and write the first snapshot",
        True,
    ),
    "serve": ("serve_cmd", "serve recommendations over HTTP (FastAPI + FAISS + Redis)", True),
    "worker": (
        "worker_cmd",
        "train on feedback windows, gate, publish snapshots (Redis from XSMOE_REDIS_URL)",
        True,
    ),
    "snapshot": ("snapshot_cmd", "list snapshots, promote or roll back one", False),
    "up": (
        "up_cmd",
        "run Redis (embedded unless XSMOE_REDIS_URL), the API and the worker; Ctrl-C stops",
        True,
    ),
    "replay": (
        "replay_cmd",
        "replay a dataset's later interactions through the API, in time order",
        False,
    ),
    "config": ("config_cmd", "the settings: reference, effective values, checks", False),
}
# Top-level options that take a value (the command is the first word after them).
VALUE_OPTIONS = {"--log-level", "--config"}
log = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # as common.logs writes it


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("xsmoe")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser(command: str | None = None) -> Parser:
    """Every command by name and help; only `command` gets its full set of options."""
    parser = Parser(
        prog="xsmoe",
        description="Online multimodal recommendation with expandable side experts.",
        epilog=EXIT_CODES,
        formatter_class=Formatter,
        parents=[common_options()],
    )
    parser.add_argument("--version", action="version", version=f"xsmoe {version()}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    for name, (module, text, _) in COMMANDS.items():
        cmd = add_command(commands, name, text)
        if name == command:
            importlib.import_module(f"xsmoe.{module}").register(cmd)
    return parser


def command_in(argv: Sequence[str]) -> str | None:
    """The command word of argv, if it names one: the first word that is no option."""
    words = iter(argv)
    for word in words:
        if word in VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


@contextmanager
def config_file(path: Path | None) -> Iterator[None]:
    """`--config FILE` as XSMOE_CONFIG_FILE while the command runs, so the processes it
    starts (`xsmoe up`'s API and worker) read the same file."""
    if path is None:
        yield
        return
    before = os.environ.get(CONFIG_FILE_ENV)
    os.environ[CONFIG_FILE_ENV] = str(path.resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CONFIG_FILE_ENV, None)
        else:
            os.environ[CONFIG_FILE_ENV] = before


def setup(level: str, heavy: bool) -> None:
    if heavy:  # common.logs also quiets transformers, which it imports
        from xsmoe.common.logs import setup_logging

        setup_logging(level)
    else:
        logging.basicConfig(level=level, format=LOG_FORMAT)
    # faiss, imported only when a command needs it (after this), logs its CPU probing.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)


def error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)  # noqa: T201 - the CLI's own output


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(command_in(argv)).parse_args(argv)
    heavy = COMMANDS[args.command][2]
    try:
        with config_file(getattr(args, "config", None)):
            settings = load_settings(Settings)
            setup(getattr(args, "log_level", None) or settings.log_level, heavy)
            if settings.torch_threads and heavy:
                import torch

                torch.set_num_threads(settings.torch_threads)
            return int(args.handler(args, settings))
    except (UsageError, ConfigFileError) as exc:
        error(str(exc))
        return 2
    except EncoderLoadError as exc:
        setting = f"XSMOE_{exc.modality.upper()}__{exc.field.upper()}"
        error(f"{exc} (setting {setting})")
        return 2
    except ModelError as exc:  # a bad input file or snapshot: what was given is wrong
        error(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # a store that did not answer, a full disk: said, not traced
        log.debug("%s failed", args.command, exc_info=True)  # the trace, at --log-level DEBUG
        # The snapshot store's module loads torch; it is loaded when it raised.
        store = sys.modules.get("xsmoe.common.snapshot_store.base")
        if store is not None and isinstance(exc, store.StoreError):
            error(f"{exc} (snapshot store unavailable; try again)")
        else:
            error(str(exc))
        return 1
