"""The event correlator (client-go's EventCorrelator): spam filter, aggregation, deduplication, bounded caches."""

from __future__ import annotations

import pytest

from runtime.event_correlator import (
    COMBINED_PREFIX,
    LRU,
    Aggregator,
    EventCorrelator,
    EventFacts,
    Observed,
    SpamFilter,
)


def facts(message: str = "Back-off restarting failed container c in pod p", *, reason: str = "BackOff",
          name: str = "p", uid: str = "u1", component: str = "kubelet", type_: str = "Warning") -> EventFacts:
    return EventFacts(component=component, host="n1", kind="Pod", namespace="default", name=name, uid=uid,
                      api_version="v1", type=type_, reason=reason, message=message)


def occur(c: EventCorrelator, f: EventFacts, now: float) -> tuple[str, int] | None:
    """One occurrence as the recorder handles it: (message written, count written), None when dropped."""
    got = c.correlate(f, now)
    if got.skip:
        return None
    count = got.observed.count + 1 if got.observed is not None else 1
    name = got.observed.name if got.observed is not None else f"ev{len(c.observations)}"
    c.written(got.key, Observed(name, "default", count, now))
    return got.message, count


def test_identical_events_bump_one_count() -> None:
    c = EventCorrelator()
    results = [occur(c, facts(), float(t)) for t in range(5)]
    assert [r[1] for r in results if r] == [1, 2, 3, 4, 5]
    assert len(c.observations) == 1


def test_different_objects_and_reasons_are_different_events() -> None:
    c = EventCorrelator()
    assert occur(c, facts(name="a", uid="1"), 0.0) == (facts().message, 1)
    assert occur(c, facts(name="b", uid="2"), 0.0) == (facts().message, 1)
    assert occur(c, facts(reason="Unhealthy", message="Liveness probe failed: x"), 0.0) == (
        "Liveness probe failed: x", 1)
    assert len(c.observations) == 3


def test_spam_filter_allows_a_burst_of_25_then_one_per_five_minutes() -> None:
    spam = SpamFilter()
    f = facts()
    assert [spam.allow(f, 0.0) for _ in range(26)] == [True] * 25 + [False]
    assert not spam.allow(f, 299.0)
    assert spam.allow(f, 300.5)  # one token back after 5 minutes
    assert not spam.allow(f, 301.0)
    assert spam.allow(facts(name="other", uid="u2"), 301.0)  # per object: another has its own bucket
    assert spam.allow(facts(type_="Normal"), 301.0)  # and per type, as client-go's spam key


def test_spam_filter_refills_up_to_the_burst_only() -> None:
    spam = SpamFilter(burst=3, refill_every=10.0)
    f = facts()
    assert all(spam.allow(f, 0.0) for _ in range(3))
    assert [spam.allow(f, 10_000.0) for _ in range(4)] == [True, True, True, False]


def test_crash_loop_costs_at_most_the_burst_of_writes() -> None:
    c = EventCorrelator()
    written = [occur(c, facts(), t * 0.5) for t in range(1000)]  # 1,000 back-offs in ~8 minutes
    kept = [w for w in written if w is not None]
    assert len(kept) == 26  # the burst, then one refill after 5 minutes
    assert kept[-1][1] == 26 and c.skipped == 974
    assert len(c.observations) == 1  # all of them one Event


def test_similar_events_with_different_messages_are_combined_from_the_tenth() -> None:
    c = EventCorrelator()
    out = [occur(c, facts(f"Liveness probe failed: attempt {i}", reason="Unhealthy"), float(i))
           for i in range(14)]
    assert all(o is not None for o in out)
    messages = [o[0] for o in out if o]
    assert messages[:9] == [f"Liveness probe failed: attempt {i}" for i in range(9)]
    assert all(m.startswith(COMBINED_PREFIX) for m in messages[9:])
    assert messages[13] == COMBINED_PREFIX + "Liveness probe failed: attempt 13"
    counts = [o[1] for o in out if o]
    assert counts[9:] == [1, 2, 3, 4, 5]  # the combined event is one Event whose count grows
    assert len(c.observations) == 10  # nine distinct events and the combined one


def test_aggregation_window_restarts_after_ten_minutes() -> None:
    agg = Aggregator()
    for i in range(9):
        agg.aggregate(facts(f"m{i}"), float(i))
    message, _ = agg.aggregate(facts("m9"), 20.0)
    assert message.startswith(COMBINED_PREFIX)
    message, key = agg.aggregate(facts("m10"), 20.0 + 601.0)  # quiet for more than the window: start afresh
    assert message == "m10" and key[-1] == "m10"


def test_repeating_one_message_does_not_count_towards_aggregation() -> None:
    agg = Aggregator()
    for t in range(50):
        message, _ = agg.aggregate(facts("the same"), float(t))
        assert message == "the same"


def test_forget_starts_a_new_event() -> None:
    c = EventCorrelator()
    occur(c, facts(), 0.0)
    key = c.correlate(facts(), 1.0).key
    c.forget(key)
    assert c.correlate(facts(), 2.0).observed is None


def test_caches_are_bounded_lru() -> None:
    c = EventCorrelator(size=100)
    for i in range(1000):
        occur(c, facts(name=f"p{i}", uid=str(i)), float(i))
    assert len(c.observations) == 100 and len(c.spam) == 100 and len(c.aggregator) == 100
    assert occur(c, facts(name="p999", uid="999"), 1000.0) == (facts().message, 2)  # recent: still known
    assert occur(c, facts(name="p0", uid="0"), 1000.0) == (facts().message, 1)  # evicted: a new Event


def test_lru_keeps_the_most_recently_used() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert "b" not in lru and lru.get("a") == 1 and lru.get("c") == 3
    with pytest.raises(ValueError):
        LRU(0)
    with pytest.raises(ValueError):
        SpamFilter(burst=0)
