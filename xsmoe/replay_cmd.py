"""`xsmoe replay`: a real HTTP client replaying a dataset's later interactions in time
order: ask for recommendations, then post the click; running client-side HR@10 and
the model version that served each request.

Every request is also answered by a popularity baseline on the client (the most
frequent items of the previous `--pop-window` interactions of the log, minus the
user's items posted so far, as the service excludes them), so each block of the
replay reports the served model against popularity on the very same requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from xsmoe import pipeline
from xsmoe.cli_args import Parser, bounded, count, positive, positive_int
from xsmoe.common.settings import Settings


def register(cmd: Parser) -> None:
    cmd.description = __doc__
    cmd.add_argument("--dataset", choices=pipeline.DATASETS, default="ml-100k", help="built-in")
    cmd.add_argument("--url", default="http://127.0.0.1:8000", help="the API")
    cmd.add_argument("--rate", type=positive, default=200.0, help="interactions per second")
    cmd.add_argument(
        "--start", type=bounded(float, 0.0, 1.0), default=0.5, help="where in the log to start"
    )
    cmd.add_argument("--limit", type=count, default=0, help="stop after this many (0 = all)")
    cmd.add_argument(
        "--duration", type=bounded(float, 0.0), default=0.0, help="stop after this many s (0 = no)"
    )
    cmd.add_argument("--concurrency", type=positive_int, default=16, help="requests in flight")
    # No default shown: it would print the key in --help.
    cmd.add_argument("--api-key", help="X-API-Key (default XSMOE_API__WRITE_KEY)")
    cmd.add_argument(
        "--block", type=positive_int, default=5000, help="interactions per reported block"
    )
    cmd.add_argument(
        "--pop-window", type=positive_int, default=10_000, help="popularity baseline's memory"
    )
    cmd.add_argument("--report", type=Path, help="write per-block results (JSON) here")
    cmd.set_defaults(handler=run)


def _gain(ids: list[str], item: str) -> tuple[int, float]:
    if item not in ids[:10]:
        return 0, 0.0
    return 1, 1.0 / math.log2(ids.index(item) + 2)


@dataclass
class Block:
    """One block of the replay: the served model and popularity on the same requests."""

    n: int = 0
    hits: int = 0
    ndcg: float = 0.0
    pop_hits: int = 0
    pop_ndcg: float = 0.0
    versions: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        n = max(self.n, 1)
        return {
            "requests": self.n,
            "hr@10": round(self.hits / n, 4),
            "ndcg@10": round(self.ndcg / n, 4),
            "pop_hr@10": round(self.pop_hits / n, 4),
            "pop_ndcg@10": round(self.pop_ndcg / n, 4),
            "versions": dict(sorted(self.versions.items())),
        }


@dataclass
class Tally:
    block_size: int = 5000
    done: int = 0
    hits: int = 0
    ndcg: float = 0.0
    failed: int = 0
    versions: Counter[str] = field(default_factory=Counter)
    first_seen: dict[str, int] = field(default_factory=dict)
    blocks: dict[int, Block] = field(default_factory=dict)

    def record(
        self, index: int, version: str, served: list[str], popular: list[str], item: str
    ) -> None:
        hit, gain = _gain(served, item)
        pop_hit, pop_gain = _gain(popular, item)
        self.hits += hit
        self.ndcg += gain
        self.versions[version] += 1
        self.first_seen.setdefault(version, self.done)
        block = self.blocks.setdefault(index // self.block_size, Block())
        block.n += 1
        block.hits += hit
        block.ndcg += gain
        block.pop_hits += pop_hit
        block.pop_ndcg += pop_gain
        block.versions[version] += 1

    def line(self) -> str:
        hr = self.hits / self.done if self.done else 0.0
        nd = self.ndcg / self.done if self.done else 0.0
        served = ", ".join(f"{v}: {n}" for v, n in sorted(self.versions.items()))
        return (
            f"{self.done} replayed, HR@10 {hr:.4f}, NDCG@10 {nd:.4f}, "
            f"failed {self.failed}; versions {served}"
        )

    def table(self) -> str:
        lines = [
            "| block | requests | served HR@10 | served NDCG@10 | pop HR@10 | pop NDCG@10 "
            "| versions served |",
            "|---|---|---|---|---|---|---|",
        ]
        for k, block in sorted(self.blocks.items()):
            b = block.as_json()
            served = ", ".join(f"{v} ({n})" for v, n in b["versions"].items())
            lines.append(
                f"| {k} | {b['requests']} | {b['hr@10']:.4f} | {b['ndcg@10']:.4f} "
                f"| {b['pop_hr@10']:.4f} | {b['pop_ndcg@10']:.4f} | {served} |"
            )
        return "\n".join(lines)


class Popularity:
    """Most frequent items of the last `window` interactions of the log (a sliding count)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.counts: Counter[str] = Counter()
        self.recent: deque[str] = deque()
        self.top: list[str] = []
        self.stale = True

    def add(self, item: str) -> None:
        self.counts[item] += 1
        self.recent.append(item)
        if len(self.recent) > self.window:
            old = self.recent.popleft()
            self.counts[old] -= 1
        self.stale = True

    def top_k(self, k: int, exclude: set[str]) -> list[str]:
        if self.stale:
            self.top = [i for i, _ in self.counts.most_common(k + 500)]
            self.stale = False
        return [i for i in self.top if i not in exclude][:k]


async def _one(
    http: httpx.AsyncClient,
    index: int,
    user: str,
    item: str,
    ts: float,
    popular: list[str],
    tally: Tally,
) -> None:
    try:
        r = await http.post("/v1/recommendations", json={"user_id": user, "k": 10})
        r.raise_for_status()
        body = r.json()
        tally.record(
            index, body["model_version"], [x["item_id"] for x in body["items"]], popular, item
        )
        event = {"event_id": f"replay-{index}", "user_id": user, "item_id": item, "ts": ts}
        (await http.post("/v1/feedback", json=event)).raise_for_status()
    except httpx.HTTPError as exc:
        tally.failed += 1
        tqdm.write(f"request failed at interaction {index}: {exc}", file=sys.stderr)
    tally.done += 1


async def replay(args: argparse.Namespace) -> Tally:
    inter = pipeline.load_dataset(args.dataset).interactions
    first = int(len(inter) * args.start)
    last = len(inter) if not args.limit else min(len(inter), first + args.limit)
    key = args.api_key or os.environ.get("XSMOE_API__WRITE_KEY")
    headers = {"X-API-Key": key} if key else {}
    tally = Tally(block_size=args.block)
    pop = Popularity(args.pop_window)
    for i in range(max(0, first - args.pop_window), first):
        pop.add(str(inter.item_ids[i]))
    posted: dict[str, set[str]] = {}
    locks: dict[str, asyncio.Lock] = {}
    gate = asyncio.Semaphore(args.concurrency)
    start = time.monotonic()
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(
        base_url=args.url, headers=headers, timeout=30, limits=limits
    ) as http:
        bar = tqdm(total=last - first, desc="replay", unit="click", file=sys.stderr)
        tasks = []

        async def paced(i: int) -> None:
            user, item = str(inter.user_ids[i]), str(inter.item_ids[i])
            lock = locks.setdefault(user, asyncio.Lock())
            # The baseline answers from what the log held when the request was sent.
            seen = posted.setdefault(user, set())
            popular = pop.top_k(10, seen)
            seen.add(item)
            pop.add(item)
            async with gate, lock:  # one user's clicks stay in order
                await _one(http, i - first, user, item, float(inter.timestamps[i]), popular, tally)
            bar.update()
            if tally.done % 500 == 0:
                bar.set_postfix_str(f"HR@10 {tally.hits / tally.done:.3f}")
                tqdm.write(tally.line(), file=sys.stderr)

        for n, i in enumerate(range(first, last)):
            due = start + n / args.rate
            if args.duration and due - start > args.duration:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(paced(i)))
        await asyncio.gather(*tasks)
        bar.close()
    return tally


def run(args: argparse.Namespace, settings: Settings) -> int:
    tally = asyncio.run(replay(args))
    print(tally.line())  # noqa: T201 - the command's own output
    print(tally.table())  # noqa: T201
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        blocks = {str(k): b.as_json() for k, b in sorted(tally.blocks.items())}
        args.report.write_text(json.dumps({"block": args.block, "blocks": blocks}, indent=2))
    for version, at in sorted(tally.first_seen.items(), key=lambda kv: kv[1]):
        print(f"  {version} first served at interaction {at}")  # noqa: T201
    return 1 if tally.failed else 0
