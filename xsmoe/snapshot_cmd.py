"""`xsmoe snapshot list | promote V | rollback V`: look at and move the serving pointer.

The store's pointer is what a process reads at start; the Redis pointer is what the
running API replicas follow. Which Redis: --redis-url, else XSMOE_REDIS_URL (or the
config file's redis_url), else the one a running `xsmoe up` started (it writes
DATA_DIR/run/up.json), else the setting's default.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from xsmoe.cli_args import Parser, UsageError, add_command, existing_dir
from xsmoe.common.redis_url import parse_redis_url, redacted
from xsmoe.common.settings import Settings
from xsmoe.endpoints import endpoints_file, read_endpoints

if TYPE_CHECKING:
    from xsmoe.common.snapshot_store import SnapshotStore

COLUMNS = (
    "",
    "version",
    "parent",
    "created",
    "gate",
    "experts",
    "items",
    "index",
    "recall@10",
    "gate NDCG@10",
    "val NDCG@10",
)
NUMERIC = {"items", "recall@10", "gate NDCG@10", "val NDCG@10"}


def redis_url(text: str) -> str:
    try:
        parse_redis_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _where(parser: Parser, default: Any) -> None:
    """Where the snapshots and Redis are; on `snapshot` and on each action, so that they
    can come before or after it (the action's copy does not reset the other's value)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--snapshot-dir",
        type=existing_dir,
        default=default,
        help="a local store (default XSMOE_SNAPSHOT_STORE, else the snapshot directory)",
    )
    group.add_argument("--store", default=default, help="a directory or s3://bucket/prefix")
    parser.add_argument(
        "--redis-url",
        type=redis_url,
        default=default,
        help="the Redis the API follows (default: XSMOE_REDIS_URL, else a running `xsmoe up`'s, "
        "else redis://localhost:6379/0)",
    )


def register(cmd: Parser) -> None:
    cmd.description = __doc__
    _where(cmd, None)
    sub = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = add_command(
        sub, "list", help="versions, lineage, gate outcome, experts, metrics; the Redis pointer"
    )
    _where(listing, argparse.SUPPRESS)
    for name, text in (
        ("promote", "serve V even though the gate rejected it (operator override)"),
        ("rollback", "serve an earlier version V"),
    ):
        action = add_command(sub, name, help=text)
        action.add_argument("version", help="e.g. v000003 (see `xsmoe snapshot list`)")
        _where(action, argparse.SUPPRESS)
    cmd.set_defaults(handler=run)


def _current(store: SnapshotStore) -> str | None:
    """The current version, or None where the pointer names none (listing and rolling
    back are how an operator repairs such a pointer)."""
    from xsmoe.model.snapshot_layout import SnapshotError

    try:
        return store.pointer()
    except SnapshotError as exc:
        print(f"warning: {exc}", file=sys.stderr)  # noqa: T201
        return None


def _experts(experts: dict[str, Any]) -> str:
    return " ".join(f"{m}:{','.join(map(str, n))}" for m, n in experts.items()) or "-"


def _index(manifest: dict[str, Any]) -> tuple[str, str]:
    """The index and recall@10 columns."""
    from xsmoe.model.snapshot_layout import IVF_INDEX, index_entry

    index = index_entry(manifest)
    params, kind = index["params"], "exact"
    if index["kind"] == IVF_INDEX:
        kind = f"ivf {params.get('nprobe')}/{params.get('nlist')}"
    return kind, _metric(index.get("recall@10"))


def _metric(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"


def _row(version: str, m: dict[str, Any], current: str | None) -> tuple[str, ...]:
    metrics = m.get("metrics", {})
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.get("created_at", 0)))
    return (
        "*" if version == current else " ",
        version,
        m.get("parent") or "-",
        created,
        m.get("gate", {}).get("outcome", "-"),
        _experts(m.get("experts", {})),
        f"{int(m.get('items', 0)):,}",
        *_index(m),
        _metric(metrics.get("gate", {}).get("candidate", {}).get("ndcg@10")),
        _metric(metrics.get("val_ndcg@10")),
    )


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned columns under COLUMNS: text to the left, figures to the right."""
    widths = [max(len(r[i]) for r in (COLUMNS, *rows)) for i in range(len(COLUMNS))]
    lines = []
    for row in (COLUMNS, *rows):
        cells = [
            cell.rjust(w) if name in NUMERIC else cell.ljust(w)
            for cell, w, name in zip(row, widths, COLUMNS, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def redis_target(args: argparse.Namespace, settings: Settings) -> tuple[str, str]:
    """The Redis URL to use and where it came from (see the module's docstring)."""
    if args.redis_url:
        return args.redis_url, "--redis-url"
    if "redis_url" in settings.model_fields_set:
        given = "XSMOE_REDIS_URL" in os.environ
        return settings.redis_url, "XSMOE_REDIS_URL" if given else "redis_url of the config file"
    up = read_endpoints(settings.data_dir)
    if up is not None:
        where = f"the running `xsmoe up`, {endpoints_file(settings.data_dir)}"
        if up.redis_url is None:
            raise UsageError(
                f"{where} uses a Redis URL with a password, which it does not write down: "
                "pass --redis-url or set XSMOE_REDIS_URL"
            )
        return up.redis_url, where
    return settings.redis_url, "the default; no `xsmoe up` is running here"


def run(args: argparse.Namespace, settings: Settings) -> int:
    from xsmoe.common.snapshot_store import LocalStore, open_store
    from xsmoe.model.snapshot_layout import SnapshotError
    from xsmoe.workers import redis_client

    if args.snapshot_dir and args.store:
        raise UsageError("--snapshot-dir and --store: give one of them")
    store = LocalStore(args.snapshot_dir) if args.snapshot_dir else open_store(settings, args.store)
    url, source = redis_target(args, settings)
    keys = settings.keys
    shown = f"Redis {redacted(url)} ({source})"
    if args.action == "list":
        current = _current(store)
        rows = [_row(v, store.manifest(v), current) for v in store.versions()]
        print("\n".join(table(rows)))  # noqa: T201 - the CLI's own output
        print(f"* = the store's pointer ({store.url})")  # noqa: T201
        try:
            client = redis_client.connect(url, socket_connect_timeout=1, socket_timeout=2)
            pointer = client.get(keys.snapshot_pointer)
        except redis_client.REDIS_ERRORS as exc:
            print(f"{shown}: not reachable ({exc})", file=sys.stderr)  # noqa: T201
            return 0
        followed = (pointer.decode() if isinstance(pointer, bytes) else pointer) or "none yet"
        print(f"{shown}: the API replicas follow {followed}")  # noqa: T201
        return 0
    if args.version not in store.versions():
        raise SnapshotError(f"no snapshot {args.version} in {store.url}")
    previous = _current(store)
    store.set_pointer(args.version)
    try:
        client = redis_client.connect(url, socket_connect_timeout=2, socket_timeout=5)
        client.set(keys.snapshot_pointer, args.version)
        client.publish(keys.snapshot_channel, args.version)
    except redis_client.REDIS_ERRORS as exc:
        # The Redis pointer is what replicas follow: until it moves, they fall back to
        # the store's pointer only while Redis is down, and return to the old version
        # once it answers.
        print(  # noqa: T201
            f"{args.action}: {store.url} pointer {previous} -> {args.version}, but the Redis "
            f"pointer {keys.snapshot_pointer} on {shown} did not move ({exc}); run this "
            "again once Redis answers",
            file=sys.stderr,
        )
        return 1
    print(f"{args.action}: {previous} -> {args.version}; announced on {shown}")  # noqa: T201
    return 0
