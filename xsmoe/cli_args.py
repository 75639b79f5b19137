"""What every `xsmoe` command shares: the parser class, option types, usage errors.

Light on purpose: `xsmoe --help` and the commands that need no model import only
this, argparse and the settings, never torch.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

from xsmoe.common.redis_url import redacted
from xsmoe.common.settings import CONFIG_FILE_ENV, LOG_LEVELS, ConfigFileError

S = TypeVar("S", bound=BaseSettings)
N = TypeVar("N", int, float)

EXIT_CODES = """exit status:
  0    success
  1    runtime failure (a server unreachable, a run that failed; the message says what)
  2    usage or configuration error (a bad option, setting, config file or input file)
  130  interrupted (Ctrl-C)

every setting: docs/configuration.md or `xsmoe config reference`"""
# Settings whose value must not be echoed back in an error message.
SECRET_WORDS = ("key", "secret", "password")


class UsageError(Exception):
    """A bad option, setting or input: exit 2 with `error: <message>`."""


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in every option's help; a text with line breaks (a module docstring, the
    exit codes) keeps them, a one-line text is wrapped."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # No "(default: None)", "(default: False)" or "(default: [])": they say nothing.
        if action.default is None or action.default is False or action.default == []:
            return action.help
        return super()._get_help_string(action)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def common_options() -> Parser:
    """Options accepted before and after a subcommand (`xsmoe --log-level X snapshot list`
    and `xsmoe snapshot list --log-level X`); SUPPRESS keeps the later one from resetting
    the earlier to a default."""
    parent = Parser(add_help=False)
    parent.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS,
        help="log level (default XSMOE_LOG_LEVEL, INFO)",
    )
    parent.add_argument(
        "--config",
        type=existing_file,
        default=argparse.SUPPRESS,
        metavar="FILE.toml",
        help="settings file (XSMOE_CONFIG_FILE); the environment overrides it",
    )
    return parent


def add_command(sub: Any, name: str, help: str, **kwargs: Any) -> Parser:
    """A (sub)command's parser with the shared formatter and options."""
    parser: Parser = sub.add_parser(
        name, help=help, formatter_class=Formatter, parents=[common_options()], **kwargs
    )
    return parser


def bounded(
    cast: type[N], low: N, high: N | None = None, above: bool = False
) -> Callable[[str], N]:
    """An option type: a number >= low (> low if `above`), <= high if given."""
    allowed = f"{'>' if above else '>='} {low}" if high is None else f"{low}..{high}"
    kind = "a whole number" if cast is int else "a number"

    def parse(text: str) -> N:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind} ({allowed})") from None
        if value < low or (above and value == low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range ({allowed})")
        return value

    parse.__name__ = cast.__name__  # what argparse names in its own messages
    return parse


port = bounded(int, 1, 65535)
positive_int = bounded(int, 1)
count = bounded(int, 0)
positive = bounded(float, 0.0, above=True)


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def existing_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such directory")
    return path


def load_settings(cls: type[S]) -> S:
    """The settings of `cls`, or a UsageError naming each bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        raise UsageError(settings_error(exc)) from None
    except ConfigFileError as exc:
        raise UsageError(str(exc)) from None
    except SettingsError as exc:
        raise UsageError(unparsable(exc)) from None


def unparsable(exc: SettingsError) -> str:
    """pydantic-settings names the field of a variable whose JSON does not parse; name
    the variables themselves (XSMOE_TEXT -> XSMOE_TEXT__LAYERS='[0, x]')."""
    found = re.search(r'field "(\w+)"', str(exc))
    field = f"XSMOE_{found.group(1).upper()}" if found else "XSMOE_*"
    names = sorted(k for k in os.environ if k == field or k.startswith(f"{field}__")) or [field]
    return f"{', '.join(names)}: not valid JSON (a list is written [0, 3, 6])"


def settings_error(exc: ValidationError) -> str:
    """One line: `XSMOE_REDIS_SHARDS: Input should be ... (got '0')` per bad setting."""
    problems = []
    for error in exc.errors():
        path = []
        for part in error["loc"]:
            if not isinstance(part, str):
                break  # a list index: the variable holds the whole list
            path.append(part.upper())
        name = "XSMOE_" + "__".join(path) if path else "settings"
        if path and os.environ.get(CONFIG_FILE_ENV):
            name += f" (or {'.'.join(path).lower()} in {os.environ[CONFIG_FILE_ENV]})"
        message = str(error["msg"]).removeprefix("Value error, ")
        given = error.get("input")
        secret = any(word in "_".join(path).lower() for word in SECRET_WORDS)
        if path and not secret and isinstance(given, str | int | float):
            message += f" (got {redacted(given) if isinstance(given, str) else given!r})"
        problems.append(f"{name}: {message}")
    return "; ".join(problems)
