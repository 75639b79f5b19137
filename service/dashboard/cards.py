"""The row of cards at the top of the dashboard: one figure each, with what it is over."""

from __future__ import annotations

import time
from html import escape

from xsmoe.model.snapshot_layout import IVF_INDEX, index_entry
from xsmoe.service.dashboard.data import DashboardData, VersionTraffic

Card = tuple[str, str, str]  # title, value (HTML), detail (HTML)


def span(cls: str, text: str) -> str:
    return f'<span class="{cls}">{escape(text)}</span>'


def ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _serving(d: DashboardData) -> Card:
    parent = d.manifest.get("parent") or "—"
    created = d.manifest.get("created_at")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(created)) if created else "—"
    return "serving", escape(d.version), f"parent {escape(str(parent))} · made {when}"


def _gate(d: DashboardData) -> Card:
    gate = d.manifest.get("gate") or {"outcome": "bootstrap", "reason": "first snapshot"}
    outcome = str(gate.get("outcome"))
    cls = "ok" if outcome in ("promoted", "bootstrap") else "bad"
    return "gate", span(cls, outcome), escape(str(gate.get("reason", "")))


def _previous_online(d: DashboardData) -> tuple[str, dict[str, float]] | None:
    """The parent's figure if it has clicks, else the newest other version's."""
    scored = {v: m for v, m in d.online.items() if v != d.version and m.get("n", 0) > 0}
    parent = d.manifest.get("parent")
    if parent in scored:
        return str(parent), scored[str(parent)]
    older = sorted((v for v in scored if v < d.version), reverse=True)
    return (older[0], scored[older[0]]) if older else None


def _online(d: DashboardData) -> Card:
    title = "online HR@10"
    if not d.redis_ok:
        return title, span("bad", "Redis unavailable"), "the worker records these in Redis"
    now = d.online.get(d.version) or {}
    if now.get("n", 0) > 0:
        value = f"{now['hr@10']:.3f}"
        detail = (
            f"over {now['n']:,.0f} clicks on {escape(d.version)} · NDCG@10 {now['ndcg@10']:.3f}"
        )
        return title, value, detail
    value = span("muted", f"no clicks yet on {d.version}")
    before = _previous_online(d)
    if before is None:
        return title, value, "scored when the worker closes a window served by it"
    version, m = before
    return title, value, f"{escape(version)} had {m['hr@10']:.3f} over {m['n']:,.0f} clicks"


def _feedback(d: DashboardData) -> Card:
    """Counted by the worker (it knows its group); without a live worker only the
    streams' length is known, an upper bound."""
    title = "feedback not yet trained"
    if not d.redis_ok:
        return title, span("bad", "Redis unavailable"), ""
    tail = f" · dead-lettered {int(d.lag.get('dead', 0)):,}"
    w = d.worker
    if w is None or w.stale(d.now) or w.untrained is None:
        length = int(d.lag.get("length", 0))
        value = f"≤ {length:,} events" if length else "0 events"
        return title, value, "in the stream; open window unknown (no live worker)" + tail
    value = f"{'' if w.untrained_exact else '≈ '}{w.untrained:,} events"
    beyond = max(0, w.untrained - w.fill)
    cls = "warn" if w.window_events and beyond > w.window_events else "muted"
    detail = (
        f"open window {w.fill:,} / {w.window_events:,} · "
        f'<span class="{cls}">{beyond:,} waiting beyond it</span>{tail}'
    )
    return title, value, detail


def _next_close(d: DashboardData) -> str:
    w = d.worker
    assert w is not None
    if w.phase == "training":
        return "training now"
    if w.next_close_at is None:
        return f"closes {w.window_seconds:g} s after its first event"
    return f"closes in ~{ago(w.next_close_at - d.now)}"


def _worker(d: DashboardData) -> Card:
    title = "worker"
    w = d.worker
    if w is None:
        if not d.redis_ok:
            return title, span("bad", "Redis unavailable"), ""
        return title, span("bad", "no worker seen"), "no status in the last hour: is it running?"
    last = "no window closed yet"
    if w.last_window is not None:
        made = f" {escape(w.last_version)}" if w.last_version else ""
        when = f" {ago(d.now - w.last_created_at)} ago" if w.last_created_at else ""
        last = f"last: w{w.last_window} {escape(w.last_outcome)}{made}{when}"
    if w.phase == "stopped":
        value = span("bad", f"worker: stopped {ago(w.age(d.now))} ago")
        return title, value, f"{escape(w.leader)} stopped on purpose · {last}"
    if w.stale(d.now):
        value = span("bad", f"worker: not seen for {ago(w.age(d.now))}")
        return title, value, f"was {escape(w.leader)}, window {w.window} · {last}"
    value = f"{span('ok', w.leader)} leads"
    window = f"window {w.window}: {w.fill:,} / {w.window_events:,}, {_next_close(d)}"
    return title, value, f"{window} · {last}"


def _answers(d: DashboardData) -> Card:
    t = d.by_version.get(d.version) or VersionTraffic()
    title = f"answers on {d.version} (this replica)"
    if not t.requests:
        return title, span("muted", "no /v1 request yet"), ""
    fallback = f"{100 * t.fallbacks / t.recommendations:.1f}%" if t.recommendations else "—"
    cls = "bad" if t.server_errors else "ok"
    errors = span(cls, f"5xx {100 * t.server_errors / t.requests:.2f}%")
    refused = f"4xx {100 * t.client_errors / t.requests:.1f}%"
    asked = f"{t.requests:,.0f} requests ({t.recommendations:,.0f} recommend)"
    detail = f"{errors} · {refused} of {asked}"
    return title, f"{fallback} fallback", detail


def _items(d: DashboardData) -> Card:
    swaps = f"{d.swaps} swap{'' if d.swaps == 1 else 's'} by this replica"
    index = index_entry(d.manifest)
    if index["kind"] == IVF_INDEX:
        params = index["params"]
        how = escape(
            f"IVF, {params.get('nprobe')} of {params.get('nlist')} lists probed, "
            f"recall@10 {index.get('recall@10')}"
        )
    else:
        how = "exact search"
    return "items indexed", f"{d.items_indexed:,}", f"{how} · {swaps}"


def cards(d: DashboardData) -> str:
    every = (_serving, _gate, _online, _feedback, _worker, _answers, _items)
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card">{escape(title)}<b>{value}</b><small>{detail}</small></div>'
            for title, value, detail in (card(d) for card in every)
        )
        + "</div>"
    )
