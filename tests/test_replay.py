"""The replay's popularity baseline and per-block tallies (pure functions, no server)."""

from __future__ import annotations

import math

from xsmoe.replay_cmd import Popularity, Tally


def test_popularity_slides_and_excludes_the_users_items() -> None:
    pop = Popularity(window=3)
    for item in ["a", "a", "b"]:
        pop.add(item)
    assert pop.top_k(2, set()) == ["a", "b"]
    assert pop.top_k(2, {"a"}) == ["b"]
    for item in ["c", "c", "c"]:  # "a" and "b" slide out of the window
        pop.add(item)
    assert pop.top_k(1, set()) == ["c"]


def test_blocks_score_served_and_popular_lists_on_the_same_requests() -> None:
    tally = Tally(block_size=2)
    tally.record(0, "v1", ["x", "y"], ["y", "x"], "y")  # served rank 1, popular rank 0
    tally.record(1, "v1", ["z"], ["x"], "q")  # a miss for both
    tally.record(2, "v2", ["q"], [], "q")
    b0, b1 = tally.blocks[0].as_json(), tally.blocks[1].as_json()
    assert b0["requests"] == 2 and b0["hr@10"] == 0.5 and b0["pop_hr@10"] == 0.5
    assert b0["ndcg@10"] == round(0.5 / math.log2(3), 4) and b0["pop_ndcg@10"] == 0.5
    assert b1 == {
        "requests": 1,
        "hr@10": 1.0,
        "ndcg@10": 1.0,
        "pop_hr@10": 0.0,
        "pop_ndcg@10": 0.0,
        "versions": {"v2": 1},
    }
    assert "| 1 | 1 | 1.0000" in tally.table()
