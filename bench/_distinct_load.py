"""Load where no request repeats: each wrk thread sends its own slice of the calls.

bench/_loadgen.py's wrk script starts every thread at `math.random(#calls)`, and
wrk never seeds Lua's generator, so all threads start at the same call and send
the same requests in step (at c=8 each request goes out twice). Here wrk's
`setup(thread)` numbers the threads and thread t starts at t * len(calls) / threads.
Without wrk, bench/_loadgen.py's httpx loop is used: its workers never overlap.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

from bench import _loadgen as loadgen


def run(
    base_url: str, calls: list[loadgen.Call], concurrency: int, seconds: float
) -> loadgen.LoadResult:
    """Like `_loadgen.run`: `calls` in order at a fixed concurrency for `seconds`."""
    if loadgen.generator() != "wrk":
        return loadgen.run(base_url, calls, concurrency, seconds)
    threads = min(concurrency, 2)
    entries = ",\n".join(
        f"{{{loadgen._lua_string(c.method)}, {loadgen._lua_string(c.path)}, "
        f"{loadgen._lua_string(json.dumps(c.body)) if c.body is not None else 'nil'}}}"
        for c in calls
    )
    script = f"""
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
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "calls.lua"
        lua.write_text(script)
        cmd = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds:g}s", "--latency"]
        out = subprocess.run(
            [*cmd, "-s", str(lua), base_url], capture_output=True, text=True, check=True
        ).stdout

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
