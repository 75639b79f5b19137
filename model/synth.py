"""A seeded synthetic multimodal catalog with drifting tastes (`xsmoe datasets synth`).

No public image recommendation dataset is reachable from our machines, so this
generator writes one in the public file formats (catalog JSONL + PNG images +
interactions CSV). What it assumes, so a reader can judge what a result on it
proves and what it does not:

- **Items** have a category and a brand (named in their text) and visual
  attributes: colour, pattern and shape (visible in their image only). The text
  never names a visual attribute, the image never shows the brand or category
  name, so text alone cannot know colour and the image alone cannot read the
  brand. Some items have no image, some no text.
- **New items every window**: a share of the catalog is introduced in each
  window (the cold-start slice); older items stay available.
- **Users** have a category taste (a few favourite categories) and a visual
  taste (a preferred colour and pattern). Each step, the next category follows
  a fixed category transition (what follows what) mixed with the user's taste;
  the item within it is drawn by how well its colour and pattern match the
  user's current visual taste, plus a mild popularity term.
- **Drift**: a global "season" (a colour) pulls every user's colour taste
  towards it. A season lasts `season_length` windows (default 2), then the next
  one begins, so some test windows follow their training window's season and
  others open a new one; users' own colour tastes also re-draw with a small
  probability per window. Seasons recur (the sequence revisits earlier colours),
  which is where kept (frozen) experts could help. (With a new season in every
  window, `season_length=1`, the training window never shows the test window's
  season: every trained model learnt a colour bias that was wrong one window
  later and ranked below an untrained content nearest-neighbour; see
  docs/results-synth.md.)

What it does not model: real photographs (shapes on a textured background),
real language (templated titles), price, position bias, repeat purchases.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CATEGORIES = ("sneakers", "mugs", "lamps", "backpacks", "scarves", "notebooks", "vases", "caps")
BRANDS = ("Arden", "Bexley", "Corvo", "Dunmore", "Elwood", "Fenwick", "Garrow", "Hale")
COLOURS = {
    "red": (200, 40, 40),
    "orange": (230, 130, 30),
    "yellow": (230, 210, 40),
    "green": (50, 160, 60),
    "teal": (30, 150, 150),
    "blue": (40, 70, 200),
    "purple": (130, 50, 170),
    "pink": (230, 110, 170),
}
PATTERNS = ("solid", "stripes", "dots", "checks")
SHAPES = ("circle", "square", "triangle", "diamond")
SEASONS = (0, 3, 5, 0, 6, 3, 1, 5, 0, 3)  # colour index per season: earlier seasons recur


@dataclass(frozen=True)
class SynthConfig:
    n_items: int = 3000
    n_users: int = 1000
    n_windows: int = 10
    events_per_window: int = 10_000
    image_size: int = 64
    image_only: float = 0.1  # share of items with no text
    text_only: float = 0.1  # share of items with no image
    season_pull: float = 0.6  # how much the season moves a user's colour taste
    taste_redraw: float = 0.1  # per user per window: a new personal colour
    season_length: int = 2  # windows per season
    seed: int = 0


@dataclass(frozen=True)
class SynthItem:
    item_id: str
    window: int  # when it is introduced
    category: int
    brand: int
    colour: int
    pattern: int
    shape: int
    has_text: bool
    has_image: bool


def _items(cfg: SynthConfig, rng: np.random.Generator) -> list[SynthItem]:
    # Half the catalog exists from the start; the rest arrives evenly over the windows.
    windows = np.where(
        rng.random(cfg.n_items) < 0.5, 0, rng.integers(1, cfg.n_windows, cfg.n_items)
    )
    items = []
    for i in range(cfg.n_items):
        u = rng.random()
        items.append(
            SynthItem(
                item_id=f"s{i}",
                window=int(windows[i]),
                category=int(rng.integers(len(CATEGORIES))),
                brand=int(rng.integers(len(BRANDS))),
                colour=int(rng.integers(len(COLOURS))),
                pattern=int(rng.integers(len(PATTERNS))),
                shape=int(rng.integers(len(SHAPES))),
                has_text=u >= cfg.image_only,
                has_image=u < 1 - cfg.text_only,
            )
        )
    return items


def item_text(item: SynthItem) -> str:
    """Category and brand only: the text never names a visual attribute."""
    category, brand = CATEGORIES[item.category], BRANDS[item.brand]
    return f"{brand} {category}, item no. {item.item_id[1:]}: {category} made by {brand}."


def render(item: SynthItem, size: int, seed: int) -> Image.Image:
    """The object's shape, filled with its colour and pattern, on a textured background."""
    rng = np.random.default_rng([seed, int(item.item_id[1:])])
    noise = rng.integers(170, 250, (size, size, 1)).repeat(3, axis=2).astype(np.uint8)
    img = Image.fromarray(noise, "RGB")
    draw = ImageDraw.Draw(img)
    colour = list(COLOURS.values())[item.colour]
    lo, hi = size // 6, size - size // 6
    mid = size // 2
    mask = Image.new("L", (size, size), 0)
    mdraw = ImageDraw.Draw(mask)
    shape = SHAPES[item.shape]
    if shape == "circle":
        mdraw.ellipse([lo, lo, hi, hi], fill=255)
    elif shape == "square":
        mdraw.rectangle([lo, lo, hi, hi], fill=255)
    elif shape == "triangle":
        mdraw.polygon([(mid, lo), (hi, hi), (lo, hi)], fill=255)
    else:
        mdraw.polygon([(mid, lo), (hi, mid), (mid, hi), (lo, mid)], fill=255)
    fill = Image.new("RGB", (size, size), colour)
    fdraw = ImageDraw.Draw(fill)
    dark = tuple(c // 3 for c in colour)
    step = max(4, size // 8)
    pattern = PATTERNS[item.pattern]
    for k in range(0, size, step):
        if pattern == "stripes":
            fdraw.rectangle([k, 0, k + step // 2 - 1, size], fill=dark)
        elif pattern == "dots":
            for j in range(0, size, step):
                fdraw.ellipse([k + 1, j + 1, k + step // 2, j + step // 2], fill=dark)
        elif pattern == "checks":
            for j in range(0, size, step):
                if (k // step + j // step) % 2:
                    fdraw.rectangle([k, j, k + step - 1, j + step - 1], fill=dark)
    img.paste(fill, (0, 0), mask)
    draw.rectangle([0, 0, size - 1, size - 1], outline=(120, 120, 120))
    return img


def seasons(cfg: SynthConfig) -> list[int]:
    """The season's colour index in each window."""
    return [SEASONS[(w // cfg.season_length) % len(SEASONS)] for w in range(cfg.n_windows)]


def _transitions(rng: np.random.Generator) -> np.ndarray:
    """Category -> next category probabilities: each category has two likely successors."""
    n = len(CATEGORIES)
    out = np.full((n, n), 0.2 / n)
    for c in range(n):
        for nxt in rng.choice(n, 2, replace=False):
            out[c, nxt] += 0.4
    normalised: np.ndarray = out / out.sum(1, keepdims=True)
    return normalised


def _events(
    cfg: SynthConfig, items: list[SynthItem], rng: np.random.Generator
) -> list[tuple[str, str, int]]:
    n_cat, n_col, n_pat = len(CATEGORIES), len(COLOURS), len(PATTERNS)
    trans = _transitions(rng)
    cat_taste = rng.dirichlet(np.full(n_cat, 0.3), cfg.n_users)
    own_colour = rng.integers(n_col, size=cfg.n_users)
    pattern = rng.integers(n_pat, size=cfg.n_users)
    last_cat = rng.integers(n_cat, size=cfg.n_users)
    cats = np.array([it.category for it in items])
    cols = np.array([it.colour for it in items])
    pats = np.array([it.pattern for it in items])
    born = np.array([it.window for it in items])
    clicks = np.ones(len(items))
    events: list[tuple[str, str, int]] = []
    t = 1_700_000_000
    for w, season in enumerate(seasons(cfg)):
        redraw = rng.random(cfg.n_users) < cfg.taste_redraw
        own_colour = np.where(redraw, rng.integers(n_col, size=cfg.n_users), own_colour)
        live = born <= w
        for _ in range(cfg.events_per_window):
            u = int(rng.integers(cfg.n_users))
            p_cat = 0.5 * trans[last_cat[u]] + 0.5 * cat_taste[u]
            cat = int(rng.choice(n_cat, p=p_cat / p_cat.sum()))
            pool = np.flatnonzero(live & (cats == cat))
            if not len(pool):
                continue
            colour = season if rng.random() < cfg.season_pull else own_colour[u]
            score = 2.5 * (cols[pool] == colour) + 1.2 * (pats[pool] == pattern[u])
            score = score + 0.3 * np.log(clicks[pool])
            p = np.exp(score - score.max())
            pick = int(pool[rng.choice(len(pool), p=p / p.sum())])
            clicks[pick] += 1
            last_cat[u] = cat
            t += int(rng.integers(1, 60))
            events.append((f"u{u}", items[pick].item_id, t))
    return events


def generate(cfg: SynthConfig, out: Path) -> dict[str, int]:
    """Write items.jsonl, images/*.png, events.csv and synth.json under `out`."""
    rng = np.random.default_rng(cfg.seed)
    items = _items(cfg, rng)
    events = _events(cfg, items, rng)
    (out / "images").mkdir(parents=True, exist_ok=True)
    with (out / "items.jsonl").open("w", encoding="utf-8") as fh:
        for item in items:
            row: dict[str, str] = {"item_id": item.item_id}
            if item.has_text:
                row["text"] = item_text(item)
            if item.has_image:
                name = f"images/{item.item_id}.png"
                render(item, cfg.image_size, cfg.seed).save(out / name, optimize=False)
                row["image"] = name
            fh.write(json.dumps(row) + "\n")
    with (out / "events.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["user_id", "item_id", "timestamp"])
        writer.writerows(events)
    truth = {"config": asdict(cfg), "items": [asdict(it) for it in items], "seasons": seasons(cfg)}
    (out / "synth.json").write_text(json.dumps(truth))
    return {
        "items": len(items),
        "events": len(events),
        "image_only": sum(not it.has_text for it in items),
        "text_only": sum(not it.has_image for it in items),
        "new_after_first_window": sum(it.window > 0 for it in items),
    }
