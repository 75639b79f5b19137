"""A user's state in Redis, read whole or erased: history, dislikes, the worker's
context, and the user's feedback events the worker has not been handed yet.

Erasure never touches an event a worker has already read: that one may be in a
window being trained right now, and removing it from the stream would not remove
it from the window (and could make the worker lose track of what it acked). Only
events past every consumer group's last-delivered id are deleted, decided inside
one script per chunk, so a worker reading meanwhile cannot take an event that is
being deleted, and nobody else's event is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xsmoe.common.keys import Keys
from xsmoe.service.redis_client import AsyncRedis

SCAN_CHUNK = 1000  # stream entries read per script call
MAX_SCAN = 200_000  # entries an erasure looks at, at most (the stream is trimmed)
# A read (GET) looks at fewer: it may be called often, and a worker far behind leaves
# a long untrained stream; beyond this the count is a lower bound, and says so.
READ_SCAN = 10_000

# Stream ids compare as two numbers (ms, seq).
_IDS = """
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function cmp(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if am ~= bm then return am < bm and -1 or 1 end
  if as ~= bs then return as < bs and -1 or 1 end
  return 0
end
local function after(id)
  local ms, seq = parse(id)
  return string.format('%d-%d', ms, seq + 1)
end
"""

# KEYS: the user's feedback stream. ARGV: user, start id ('' on the first call),
# count, erase ('1': delete the user's undelivered events). Scans from the first
# entry some consumer group has not acknowledged (pending or unread; the whole
# stream without a group). Returns {the user's events seen, deleted, delivered and
# kept, next start ('' at the end)}.
_SCAN = (
    _IDS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, 0, ''} end
local delivered, from = '0-0', nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  local last = f['last-delivered-id']
  if cmp(last, delivered) > 0 then delivered = last end
  local first = after(last)
  local p = redis.call('XPENDING', KEYS[1], f['name'])
  if tonumber(p[1]) > 0 and p[2] and cmp(p[2], first) < 0 then first = p[2] end
  if from == nil or cmp(first, from) < 0 then from = first end
end
from = from or '0-0'
if ARGV[2] ~= '' and cmp(ARGV[2], from) > 0 then from = ARGV[2] end
local entries = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', tonumber(ARGV[3]))
local seen, deleted, kept = 0, 0, 0
for _, e in ipairs(entries) do
  local fields = e[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'user_id' then
      if fields[i + 1] == ARGV[1] then
        seen = seen + 1
        if ARGV[4] == '1' and cmp(e[1], delivered) > 0 then
          redis.call('XDEL', KEYS[1], e[1])
          deleted = deleted + 1
        elseif ARGV[4] == '1' then
          kept = kept + 1
        end
      end
      break
    end
  end
end
local nxt = ''
if #entries == tonumber(ARGV[3]) then nxt = after(entries[#entries][1]) end
return {seen, deleted, kept, nxt}
"""
)

# KEYS: dead-letter stream. ARGV: user, start id, count. Dead-lettered events are
# never trained: all of the user's go. Returns {deleted, next start ('' at the end)}.
_DEAD = (
    _IDS
    + """
local entries = redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', tonumber(ARGV[3]))
local deleted = 0
for _, e in ipairs(entries) do
  local fields = e[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'user_id' and fields[i + 1] == ARGV[1] then
      redis.call('XDEL', KEYS[1], e[1])
      deleted = deleted + 1
      break
    end
  end
end
local nxt = ''
if #entries == tonumber(ARGV[3]) then nxt = after(entries[#entries][1]) end
return {deleted, nxt}
"""
)

# KEYS: history list, dislike set, worker context list. Returns their sizes, then
# deletes them (one slot: the user's shard).
_DROP = """
local sizes = {redis.call('LLEN', KEYS[1]), redis.call('SCARD', KEYS[2]),
  redis.call('LLEN', KEYS[3])}
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return sizes
"""


@dataclass(frozen=True)
class UserState:
    history: list[str]
    disliked: list[str]
    pending_events: int
    pending_exact: bool  # False: more untrained events than a read looks at

    @property
    def empty(self) -> bool:
        return not (self.history or self.disliked or self.pending_events)


@dataclass(frozen=True)
class Erasure:
    erased: dict[str, int]
    kept_events: int  # handed to a worker already: trained (or being trained) on
    complete: bool = True  # False: the streams were longer than one request scans

    @property
    def empty(self) -> bool:
        return not (any(self.erased.values()) or self.kept_events)


class UserStore:
    def __init__(self, client: AsyncRedis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._scan = client.register_script(_SCAN)
        self._dead = client.register_script(_DEAD)
        self._drop = client.register_script(_DROP)

    async def state(self, user_id: str) -> UserState:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.lrange(self.keys.history(user_id), 0, -1)
            pipe.smembers(self.keys.disliked(user_id))
            history, disliked = await pipe.execute()
        seen, _, _, done = await self._events(user_id, erase=False, budget=READ_SCAN)
        history_ids = [_text(i) for i in history]
        return UserState(history_ids, sorted(_text(i) for i in disliked), seen, done)

    async def erase(self, user_id: str) -> Erasure:
        """Remove what Redis holds of the user; events already read by a worker stay."""
        keys = self.keys
        sizes: list[Any] = await self._drop(
            keys=[keys.history(user_id), keys.disliked(user_id), keys.context(user_id)]
        )
        _, deleted, kept, done = await self._events(user_id, erase=True, budget=MAX_SCAN)
        dead, dead_done = await self._dead_letters(user_id)
        erased = {
            "history": int(sizes[0]),
            "disliked": int(sizes[1]),
            "trained_context": int(sizes[2]),
            "pending_events": deleted,
            "dead_letters": dead,
        }
        return Erasure(erased, kept, done and dead_done)

    async def _events(
        self, user_id: str, *, erase: bool, budget: int
    ) -> tuple[int, int, int, bool]:
        """(the user's events seen, deleted, kept, whether the scan reached the end)."""
        stream = self.keys.stream(self.keys.shard(user_id))
        seen = deleted = kept = scanned = 0
        start = ""
        while scanned < budget:
            reply: Any = await self._scan(
                keys=[stream], args=[user_id, start, SCAN_CHUNK, "1" if erase else "0"]
            )
            seen, deleted, kept = (
                seen + int(reply[0]),
                deleted + int(reply[1]),
                kept + int(reply[2]),
            )
            start = _text(reply[3])
            scanned += SCAN_CHUNK
            if not start:
                break
        return seen, deleted, kept, not start

    async def _dead_letters(self, user_id: str) -> tuple[int, bool]:
        deleted, start, scanned = 0, "-", 0
        while scanned < MAX_SCAN:
            reply: Any = await self._dead(
                keys=[self.keys.dead_letter], args=[user_id, start, SCAN_CHUNK]
            )
            deleted += int(reply[0])
            start = _text(reply[1])
            scanned += SCAN_CHUNK
            if not start:
                break
        return deleted, not start


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
