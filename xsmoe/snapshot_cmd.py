"""`xsmoe snapshot list | promote V | rollback V`: look at and move the serving pointer."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from xsmoe.common.settings import Settings
from xsmoe.common.snapshot_store import LocalStore, SnapshotStore, open_store
from xsmoe.model.snapshot import SnapshotError
from xsmoe.workers import redis_client


def register(commands: Any) -> None:
    cmd = commands.add_parser("snapshot", help="list snapshots, promote or roll back one")
    where = cmd.add_mutually_exclusive_group()
    where.add_argument(
        "--snapshot-dir", type=Path, help="a local store (default XSMOE_SNAPSHOT_STORE)"
    )
    where.add_argument("--store", help="a directory or s3://bucket/prefix")
    sub = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("list", help="versions, lineage, gate outcome, experts, metrics")
    for name, text in (
        ("promote", "serve V even though the gate rejected it (operator override)"),
        ("rollback", "serve an earlier version V"),
    ):
        action = sub.add_parser(name, help=text)
        action.add_argument("version")
    cmd.set_defaults(handler=run)


def _current(store: SnapshotStore) -> str | None:
    """The current version, or None where the pointer names none (listing and rolling
    back are how an operator repairs such a pointer)."""
    try:
        return store.pointer()
    except SnapshotError as exc:
        print(f"warning: {exc}", file=sys.stderr)  # noqa: T201
        return None


def _line(version: str, m: dict[str, Any], current: str | None) -> str:
    gate = m.get("gate", {}).get("outcome", "-")
    ndcg = m.get("metrics", {}).get("gate", {}).get("candidate", {}).get("ndcg@10")
    ndcg = ndcg if ndcg is not None else m.get("metrics", {}).get("val_ndcg@10")
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.get("created_at", 0)))
    mark = "*" if version == current else " "
    return (
        f"{mark}  {version}  {m.get('parent') or '-':8} {created}  {gate:9}  "
        f"{json.dumps(m.get('experts', {})):15}  {ndcg if ndcg is None else round(float(ndcg), 4)}"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = LocalStore(args.snapshot_dir) if args.snapshot_dir else open_store(settings, args.store)
    if args.action == "list":
        current = _current(store)
        print("   version  parent   created              gate       experts          NDCG@10")  # noqa: T201
        for version in store.versions():
            print(_line(version, store.manifest(version), current))  # noqa: T201
        return 0
    if args.version not in store.versions():
        raise SnapshotError(f"no snapshot {args.version} in {store.url}")
    previous = _current(store)
    store.set_pointer(args.version)
    keys = settings.keys
    try:
        client = redis_client.connect(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=5
        )
        client.set(keys.snapshot_pointer, args.version)
        client.publish(keys.snapshot_channel, args.version)
    except redis_client.REDIS_ERRORS as exc:
        # The Redis pointer is what replicas follow: until it moves, they fall back to
        # the store's pointer only while Redis is down, and return to the old version
        # once it answers.
        print(  # noqa: T201
            f"{args.action}: {store.url} pointer {previous} -> {args.version}, but the Redis "
            f"pointer {keys.snapshot_pointer} did not move ({exc}); run this again once "
            "Redis answers",
            file=sys.stderr,
        )
        return 1
    print(f"{args.action}: {previous} -> {args.version}; announced on Redis")  # noqa: T201
    return 0
