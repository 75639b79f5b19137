"""`xsmoe replay`: a real HTTP client replaying a dataset's later interactions in time
order: ask for recommendations, then post the click; running client-side HR@10 and
the model version that served each request."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from tqdm import tqdm

from common.settings import Settings
from xsmoe import pipeline


def register(commands: Any) -> None:
    cmd = commands.add_parser(
        "replay", help="replay a dataset's later interactions through the API, in time order"
    )
    cmd.add_argument("--dataset", choices=pipeline.DATASETS, default="ml-100k")
    cmd.add_argument("--url", default="http://127.0.0.1:8000")
    cmd.add_argument("--rate", type=float, default=200.0, help="interactions per second")
    cmd.add_argument("--start", type=float, default=0.5, help="where in the log to start (0..1)")
    cmd.add_argument("--limit", type=int, default=0, help="stop after this many (0 = all)")
    cmd.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds")
    cmd.add_argument("--concurrency", type=int, default=16)
    cmd.add_argument("--api-key", default=os.environ.get("XSMOE_API__WRITE_KEY"))
    cmd.set_defaults(handler=run)


@dataclass
class Tally:
    done: int = 0
    hits: int = 0
    ndcg: float = 0.0
    failed: int = 0
    versions: Counter[str] = field(default_factory=Counter)
    first_seen: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        hr = self.hits / self.done if self.done else 0.0
        nd = self.ndcg / self.done if self.done else 0.0
        served = ", ".join(f"{v}: {n}" for v, n in sorted(self.versions.items()))
        return (
            f"{self.done} replayed, HR@10 {hr:.4f}, NDCG@10 {nd:.4f}, "
            f"failed {self.failed}; versions {served}"
        )


async def _one(
    http: httpx.AsyncClient, index: int, user: str, item: str, ts: float, tally: Tally
) -> None:
    try:
        r = await http.post("/v1/recommendations", json={"user_id": user, "k": 10})
        r.raise_for_status()
        body = r.json()
        ids = [x["item_id"] for x in body["items"]]
        version = body["model_version"]
        tally.versions[version] += 1
        tally.first_seen.setdefault(version, tally.done)
        if item in ids:
            tally.hits += 1
            tally.ndcg += 1.0 / math.log2(ids.index(item) + 2)
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
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    tally = Tally()
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
            async with gate, lock:  # one user's clicks stay in order
                await _one(http, i, user, item, float(inter.timestamps[i]), tally)
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
    for version, at in sorted(tally.first_seen.items(), key=lambda kv: kv[1]):
        print(f"  {version} first served at interaction {at}")  # noqa: T201
    return 1 if tally.failed else 0
