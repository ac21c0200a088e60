"""Holes in the watch cache's feed are held until a later write names them, or given up on (FeedGaps)."""

from __future__ import annotations

from actors.api.feedgaps import FeedGaps


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_nothing_counts_before_the_cache_is_whole() -> None:
    gaps = FeedGaps()
    gaps.see(5, None)
    gaps.see(9, None)  # the initial load delivers the last revision per key: jumps are normal
    assert not gaps.held and gaps.found == 0


def test_consecutive_revisions_open_no_hole() -> None:
    gaps = FeedGaps()
    gaps.start(10)
    for rev in range(11, 20):
        gaps.see(rev, rev - 1)
    assert not gaps.held and gaps.unattributed(0) is None


def test_a_hole_is_held_until_the_write_that_replaced_it_arrives() -> None:
    clock = Clock()
    gaps = FeedGaps(clock=clock)
    gaps.start(10)
    gaps.see(13, 0)  # 11 and 12 were superseded before the feed read them
    assert gaps.held and gaps.holes == {11, 12}
    assert gaps.unattributed(pending=5) is None  # the writes naming them are still coming
    gaps.see(14, 12)
    assert gaps.held and gaps.holes == {11}
    gaps.see(15, 11)
    assert not gaps.held and gaps.unattributed(pending=5) is None
    assert (gaps.found, gaps.attributed) == (2, 2)


def test_a_hole_never_named_is_given_up_once_the_feed_caught_up() -> None:
    gaps = FeedGaps()
    gaps.start(10)
    gaps.see(13, 0)
    gaps.see(14, 12)  # 11's successor was itself superseded: nothing will name 11
    assert gaps.unattributed(pending=0) == 11
    assert not gaps.held


def test_a_hole_is_given_up_after_the_hold_even_while_the_feed_lags() -> None:
    clock = Clock()
    gaps = FeedGaps(hold=2.0, clock=clock)
    gaps.start(10)
    gaps.see(12, 0)
    clock.now += 1.9
    assert gaps.unattributed(pending=1000) is None
    clock.now += 0.2
    assert gaps.unattributed(pending=1000) == 11 and not gaps.held


def test_too_many_holes_count_as_unnamed_through_the_last() -> None:
    gaps = FeedGaps(max_holes=3)
    gaps.start(10)
    gaps.see(12, 0)
    gaps.see(20, 0)  # 11 and 13..19: more than three open
    assert gaps.held and not gaps.holes
    assert gaps.unattributed(pending=100) == 19
    assert not gaps.held and gaps.found == 8
