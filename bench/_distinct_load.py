"""Load where no request repeats: each wrk thread sends its own slice of the calls.

bench/_loadgen.py's wrk script starts every thread at `math.random(#calls)`, and
wrk never seeds Lua's generator, so all threads start at the same call and send
the same requests in step (at c=8 each request goes out twice). Here wrk's
`setup(thread)` numbers the threads and thread t starts at t * len(calls) / threads.
Without wrk, bench/_loadgen.py's httpx loop is used: its workers never overlap.

`start` runs the load in the background (a wrk process the caller holds, so a
`finally` can stop it); `run` waits for it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from bench import _loadgen as loadgen


class Load:
    """A load run in the background: `result()` waits for it, `stop()` ends it early."""

    def __init__(self, base_url: str, calls: list[loadgen.Call], concurrency: int, seconds: float):
        self.concurrency, self.seconds = concurrency, seconds
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._httpx: list[loadgen.LoadResult] = []
        self._tmp = Path(tempfile.mkdtemp(prefix="xsmoe-bench-load-"))
        if loadgen.generator() != "wrk":
            self._thread = threading.Thread(
                target=lambda: self._httpx.append(
                    loadgen.run(base_url, calls, concurrency, seconds)
                ),
                daemon=True,  # bounded: the httpx loop ends at its own deadline
            )
            self._thread.start()
            return
        lua = self._tmp / "calls.lua"
        lua.write_text(_script(calls, min(concurrency, 2)))
        cmd = ["wrk", f"-t{min(concurrency, 2)}", f"-c{concurrency}", f"-d{seconds:g}s"]
        self._proc = subprocess.Popen(
            [*cmd, "--latency", "-s", str(lua), base_url], stdout=subprocess.PIPE, text=True
        )

    def result(self) -> loadgen.LoadResult:
        try:
            if self._thread is not None:
                self._thread.join(timeout=self.seconds + 60)
                if not self._httpx:
                    raise RuntimeError("the httpx load did not finish")
                return self._httpx[0]
            assert self._proc is not None
            out, _ = self._proc.communicate(timeout=self.seconds + 60)
            if self._proc.returncode != 0:
                raise RuntimeError(f"wrk exited with {self._proc.returncode}:\n{out}")
            return _parse(out, self.concurrency, self.seconds)
        finally:
            self.stop()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        shutil.rmtree(self._tmp, ignore_errors=True)


def start(base_url: str, calls: list[loadgen.Call], concurrency: int, seconds: float) -> Load:
    """`calls` in order at a fixed concurrency for `seconds`, in the background."""
    return Load(base_url, calls, concurrency, seconds)


def run(
    base_url: str, calls: list[loadgen.Call], concurrency: int, seconds: float
) -> loadgen.LoadResult:
    """Like `_loadgen.run`, without repeated requests."""
    load = start(base_url, calls, concurrency, seconds)
    try:
        return load.result()
    finally:
        load.stop()


def _script(calls: list[loadgen.Call], threads: int) -> str:
    entries = ",\n".join(
        f"{{{loadgen._lua_string(c.method)}, {loadgen._lua_string(c.path)}, "
        f"{loadgen._lua_string(json.dumps(c.body)) if c.body is not None else 'nil'}}}"
        for c in calls
    )
    return f"""
local calls = {{
{entries}
}}
local headers = {{["Content-Type"] = "application/json"}}
local created = 0
function setup(thread)
  thread:set("id", created)
  created = created + 1
end
function init(args)
  n = id * {len(calls) // threads}
end
request = function()
  n = (n % #calls) + 1
  local c = calls[n]
  return wrk.format(c[1], c[2], headers, c[3])
end
"""


def _parse(out: str, concurrency: int, seconds: float) -> loadgen.LoadResult:
    def find(pattern: str) -> str:
        m = re.search(pattern, out)
        if m is None:
            raise ValueError(f"wrk output lacks {pattern!r}:\n{out}")
        return m.group(1)

    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    return loadgen.LoadResult(
        "wrk",
        concurrency,
        seconds,
        int(find(r"(\d+) requests in")),
        errors,
        float(find(r"Requests/sec:\s+([\d.]+)")),
        loadgen._ms(find(r"\s50%\s+(\S+)")),
        loadgen._ms(find(r"\s99%\s+(\S+)")),
    )
