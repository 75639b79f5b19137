"""`xsmoe datasets synth`: write the seeded synthetic multimodal benchmark (model/synth.py)."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from xsmoe.cli_args import Parser, UsageError, add_command
from xsmoe.common.settings import Settings
from xsmoe.model.synth import SynthConfig, generate


def register(datasets: Parser) -> None:
    sub = datasets.add_subparsers(dest="datasets_command", required=True, metavar="ACTION")
    synth = add_command(
        sub,
        "synth",
        help="a seeded multimodal catalog (text + rendered images) with drifting tastes",
        description="Writes OUT/items.jsonl, OUT/images/*.png, OUT/events.csv and OUT/synth.json "
        "(the generator's ground truth). What it assumes: see model/synth.py.",
    )
    synth.add_argument("--out", type=Path, default=Path("var/datasets/synth"), help="folder")
    defaults = SynthConfig()
    for f in fields(SynthConfig):
        synth.add_argument(
            f"--{f.name.replace('_', '-')}", type=type(getattr(defaults, f.name)),
            default=getattr(defaults, f.name), help="see model/synth.py",
        )  # fmt: skip
    synth.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    config = SynthConfig(**{f.name: getattr(args, f.name) for f in fields(SynthConfig)})
    sizes = (config.n_items, config.n_users, config.n_windows, config.events_per_window)
    if min(*sizes, config.season_length) < 1:
        raise UsageError(
            "--n-items, --n-users, --n-windows, --events-per-window, --season-length >= 1"
        )
    if not 16 <= config.image_size <= 512:
        raise UsageError("--image-size must be within 16..512")
    counts = generate(config, args.out)
    summary = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"wrote {args.out}: {summary}")  # noqa: T201 - the CLI's own output
    print(  # noqa: T201
        f"next: xsmoe eval --catalog {args.out}/items.jsonl --interactions {args.out}/events.csv"
    )
    return 0
