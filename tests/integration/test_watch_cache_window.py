"""The watch cache's event window: a resuming watch replays its own kind's changes, in order, and too old is Expired."""

from __future__ import annotations

import pytest

from actors.api.cache import WatchCache, Watcher
from protocol import codec
from protocol.errors import Expired
from protocol.selectors import parse_field_selector, parse_label_selector


def watcher(plural: str, min_rev: int) -> Watcher:
    return Watcher(f"w-{plural}-{min_rev}", plural, None, parse_label_selector(None), parse_field_selector(None),
                   "_INBOX.x", min_rev)


def replayed(cache: WatchCache, w: Watcher) -> list[int]:
    cache.add_watcher(w, resume=True)
    return [codec.unpackb(item)["rv"] for _, item in w.pending]


async def test_resume_replays_only_the_kind_watched_and_expires_past_the_window() -> None:
    cache = WatchCache(window=6)
    cache.mark_ready(0)
    for rev in range(1, 11):  # pods at even revisions, leases at odd ones
        plural = "pods" if rev % 2 == 0 else "leases"
        ns = "default" if plural == "pods" else "kube-node-lease"
        cache.apply(f"{plural}.{ns}.o{rev}", rev, codec.packb({"metadata": {"name": f"o{rev}"}}), False)
    assert cache.window_start == 4  # revisions 5..10 are kept
    assert replayed(cache, watcher("pods", 4)) == [6, 8, 10]
    assert replayed(cache, watcher("leases", 7)) == [9]
    assert replayed(cache, watcher("pods", 10)) == []
    with pytest.raises(Expired):
        cache.add_watcher(watcher("pods", 3), resume=True)


async def test_the_window_is_sized_by_bytes_too_and_keeps_no_encoded_copy() -> None:
    raw = codec.packb({"metadata": {"name": "o", "labels": {"app": "web"}}, "data": "x" * 1000})
    cache = WatchCache(window=1000, window_bytes=5 * len(raw))
    cache.mark_ready(0)
    w = watcher("configmaps", 0)
    cache.add_watcher(w, resume=False)
    for rev in range(1, 11):
        cache.apply(f"configmaps.default.o{rev}", rev, raw, False)
    assert [e.rev for e in cache.window] == [6, 7, 8, 9, 10] and cache.window_start == 5
    assert cache.window_size == 5 * len(raw)
    assert len(w.pending) == 10 and all(not e.encoded for e in cache.window)  # delivered, then dropped
    assert replayed(cache, watcher("configmaps", 7)) == [8, 9, 10]
    with pytest.raises(Expired):
        cache.add_watcher(watcher("configmaps", 4), resume=True)
    first, last = cache.get("configmaps.default.o1"), cache.get("configmaps.default.o10")
    assert first is not None and last is not None
    assert first.labels == {"app": "web"} and first.labels is last.labels  # one map for equal labels


async def test_a_message_claims_only_what_it_and_earlier_messages_carried() -> None:
    """A watch split over several messages is current at its last event after each but the last, and the
    last covers the cache's revision when the events were taken, never a change queued while they went out
    (a client that resumes after losing a later message must get that change again: finding 11 b)."""
    raw = codec.packb({"metadata": {"name": "o"}, "data": "x" * 100_000})
    cache = WatchCache()
    cache.mark_ready(0)
    w = watcher("configmaps", 0)
    cache.add_watcher(w, resume=False)
    for rev in range(1, 6):
        cache.apply(f"configmaps.default.o{rev}", rev, raw, False)
    cache.dirty.clear()  # as the flusher takes the watches to send
    messages = cache.messages(w)
    first = codec.unpackb(next(messages))
    assert [e["rv"] for e in first["events"]] == [1, 2] and first["resourceVersion"] == 2
    assert not cache.settled(w)  # no bookmark may say it is current while the rest is unsent
    cache.apply("configmaps.default.late", 6, raw, False)  # arrives while the messages go out
    rest = [codec.unpackb(m) for m in messages]
    assert [[e["rv"] for e in m["events"]] for m in rest] == [[3, 4], [5]]
    assert [m["resourceVersion"] for m in rest] == [4, 5]  # not 6: that change waits for the next flush
    assert not cache.settled(w)  # the late change is queued
    cache.dirty.clear()
    last = [codec.unpackb(m) for m in cache.messages(w)]
    assert [[e["rv"] for e in m["events"]] for m in last] == [[6]] and last[0]["resourceVersion"] == 6
    assert cache.settled(w)


async def test_an_expiry_for_a_hole_outlives_the_windows_evictions() -> None:
    """A hole's expiry raises the oldest resumable revision; evicting an old event must not lower it again,
    or a resume from before the hole replays the window without the change it lacks (finding 13: a watcher
    resumed during a partition missed 920 changes without a word)."""
    cache = WatchCache(window=5)
    cache.mark_ready(0)
    for rev in range(1, 6):
        cache.apply(f"configmaps.default.o{rev}", rev, codec.packb({"metadata": {"name": f"o{rev}"}}), False)
    # revisions 6-8 never reached the cache; 9 arrives and the hole is said
    cache.expire_through(8)
    cache.apply("configmaps.default.o9", 9, codec.packb({"metadata": {"name": "o9"}}), False)  # evicts rev 1
    assert cache.window_start == 8
    with pytest.raises(Expired):
        cache.add_watcher(watcher("configmaps", 5), resume=True)
    assert replayed(cache, watcher("configmaps", 8)) == [9]
