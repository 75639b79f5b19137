"""The thread pool behind `asyncio.to_thread` (model loads, image decodes, encodes).

An event loop joins its default pool when it closes, without a time limit: one
stuck or slow job there would hold a shutdown open indefinitely. The app gives
its loop a pool of its own and, at shutdown, swaps in an idle one and lets the
busy one finish on its own, so a shutdown always ends.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor


def install(max_workers: int = 8) -> ThreadPoolExecutor:
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="xsmoe-io")
    asyncio.get_running_loop().set_default_executor(pool)
    return pool


def release(pool: ThreadPoolExecutor) -> None:
    """Detach the pool without waiting: queued jobs are cancelled, running ones end alone."""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
    pool.shutdown(wait=False, cancel_futures=True)
