"""`xsmoe eval`: the offline streaming evaluation of every variant on the same splits."""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from xsmoe import eval_jobs, pipeline, report
from xsmoe.cli_args import Parser, UsageError, existing_file, positive_int
from xsmoe.common.settings import Settings
from xsmoe.model.device import DEVICES, DeviceUnavailable, resolve_device
from xsmoe.model.streaming import ProtocolConfig
from xsmoe.model.train import LOSSES, TrainConfig
from xsmoe.model.user_encoder import UserEncoderConfig
from xsmoe.model.variants import ALL_VARIANTS, MAIN_VARIANTS, SPECS

log = logging.getLogger(__name__)


def register(cmd: Parser) -> None:
    cmd.description = "Train on window t-1, test on window t, for every variant on the same splits."
    pipeline.add_dataset_options(cmd)
    cmd.add_argument(
        "--variants",
        default=",".join(MAIN_VARIANTS),
        help=f"comma-separated, from {', '.join(ALL_VARIANTS)}",
    )
    cmd.add_argument("--out", type=Path, default=Path("var/eval"), help="results folder")
    cmd.add_argument("--windows", type=int, default=10, help="number of time windows")
    cmd.add_argument(
        "--user-core", type=int, default=5, help="min interactions per user per window"
    )
    add_training_options(cmd)
    cmd.add_argument(
        "--tuned",
        type=existing_file,
        help="tune.json of `xsmoe tune`: each variant it names trains with its own best setting",
    )
    cmd.add_argument(
        "--jobs", type=positive_int, default=1, help="runs side by side (1 torch thread each)"
    )
    cmd.add_argument(
        "--max-experts", type=positive_int, default=8, help="cap on experts per stage (xsmoe)"
    )
    cmd.add_argument(
        "--seeds",
        default="0",
        help="comma-separated training seeds; trained variants run once per seed and "
        "report the mean (and the spread across seeds)",
    )
    cmd.add_argument("--full-ft-windows", type=int, default=2, help="test windows for full-ft")
    cmd.add_argument("--full-ft-layers", type=int, default=2, help="top text layers full-ft trains")
    cmd.set_defaults(handler=run)


def add_training_options(cmd: Parser) -> None:
    """The hyper-parameters `xsmoe eval` and `xsmoe tune` share (defaults: the tuned ones)."""
    cmd.add_argument("--max-epochs", type=int, default=TrainConfig.max_epochs, help="per window")
    cmd.add_argument("--lr", type=float, default=TrainConfig.lr, help="Adam learning rate")
    cmd.add_argument("--batch-size", type=int, default=TrainConfig.batch_size, help="sequences")
    cmd.add_argument("--loss", choices=LOSSES, default=TrainConfig.loss, help="softmax over ...")
    cmd.add_argument("--device", default="auto", help=f"training device: {', '.join(DEVICES)}")
    cmd.add_argument(
        "--dropout", type=float, default=UserEncoderConfig.dropout, help="user encoder dropout"
    )
    cmd.add_argument(
        "--modalities",
        help="comma-separated content modalities the content variants read (e.g. text, image); "
        "default: every modality some item has",
    )
    cmd.add_argument(
        "--max-len",
        type=int,
        default=UserEncoderConfig.max_len,
        help="items the user encoder reads (training chunks and serving alike)",
    )


def train_config(args: argparse.Namespace) -> TrainConfig:
    if args.max_epochs < 1 or args.batch_size < 1 or args.max_len < 1:
        raise UsageError("need --max-epochs, --batch-size and --max-len >= 1")
    if not 0 <= args.dropout < 1:
        raise UsageError("--dropout must be in [0, 1)")
    try:  # resolved here: every job then trains on (and records) the same device
        device = str(resolve_device(args.device))
    except DeviceUnavailable as exc:
        raise UsageError(f"--device: {exc}") from None
    return replace(
        TrainConfig(),
        max_epochs=args.max_epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        loss=args.loss,
        device=device,
    )


def modalities(args: argparse.Namespace) -> list[str] | None:
    if not args.modalities:
        return None
    names = [m.strip() for m in args.modalities.split(",") if m.strip()]
    if not names or not set(names) <= {"text", "image"}:
        raise UsageError(f"--modalities: text and/or image, got {args.modalities!r}")
    return names


def read_tuned(path: Path) -> dict[str, dict[str, Any]]:
    """Each variant's best setting from `xsmoe tune` (chosen on validation tails)."""
    try:
        best = json.loads(path.read_text())["best"]
        return {str(name): dict(setting) for name, setting in best.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"--tuned {path}: not a tune.json of `xsmoe tune` ({exc})") from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(ALL_VARIANTS))
    if unknown or not variants:
        raise UsageError(f"--variants: unknown {unknown}; choose from {', '.join(ALL_VARIANTS)}")
    if args.windows < 3 or args.user_core < 2:
        raise UsageError("need --windows >= 3, --user-core >= 2")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds: integers separated by commas, got {args.seeds!r}") from None
    if not seeds:
        raise UsageError("--seeds: give at least one seed")
    train = train_config(args)  # before any encoding: a bad --device fails fast
    source = pipeline.dataset_source(args)
    dataset = pipeline.load_source(source)
    pipeline.ensure_features(settings, dataset.name, dataset.items)  # the children only read it
    protocol = ProtocolConfig(n_windows=args.windows, user_core=args.user_core)
    if args.lr <= 0 or args.max_experts < 1 or args.jobs < 1:
        raise UsageError("need --lr > 0, --max-experts >= 1 and --jobs >= 1")
    used = modalities(args)
    tuned = read_tuned(args.tuned) if args.tuned else {}
    jobs, owners, chosen = [], [], {}
    for name in variants:
        fallback = SPECS[name].tuned_as
        setting = tuned.get(name, tuned.get(fallback, {}) if fallback else {})
        chosen[name] = setting
        for seed in seeds if SPECS[name].trains else seeds[:1]:
            jobs.append(
                eval_jobs.payload(
                    settings,
                    source,
                    name,
                    protocol,
                    replace(train, seed=seed),
                    max_experts=args.max_experts,
                    dropout=args.dropout,
                    max_len=args.max_len,
                    setting=setting,
                    full_ft_windows=args.full_ft_windows,
                    full_ft_layers=args.full_ft_layers,
                    modalities=used,
                )
            )
            owners.append(name)
    started = time.perf_counter()

    def done(i: int, result: dict[str, Any]) -> None:
        log.info("%s seed %s: %s", owners[i], jobs[i]["train"]["seed"], result["avg"])

    runs = eval_jobs.run_jobs(jobs, args.jobs, done)
    results: dict[str, Any] = {}
    for name in variants:
        mine = [r for r, owner in zip(runs, owners, strict=True) if owner == name]
        results[name] = report.combine_seeds(mine, seeds[: len(mine)])
    document = {
        "dataset": dataset.name,
        "source": source,
        "protocol": asdict(protocol),
        "train": asdict(train),
        "user": {"max_len": args.max_len, "dropout": args.dropout},
        "modalities": used or "all",
        "tuned": chosen,  # per variant: what replaced the settings above
        "seeds": seeds,
        "max_experts": args.max_experts,
        "seconds": round(time.perf_counter() - started, 1),
        "variants": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(document, indent=2))
    table = report.markdown(document)
    (args.out / "results.md").write_text(table)
    report.plot(document, args.out / "results.png")
    print(table)  # noqa: T201 - the CLI's own output
    print(f"wrote {args.out}/results.json, results.md, results.png")  # noqa: T201
    return 0
