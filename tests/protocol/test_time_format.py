"""``format_time`` / ``format_micro_time`` remember the last second they formatted: the same text as
``strftime`` of ``datetime.fromtimestamp`` (rounded to the microsecond as it rounds), whatever order the
times come in."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from protocol.objects import format_micro_time, format_time


def expected(epoch: float) -> tuple[str, str]:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ"), moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_the_same_text_as_strftime() -> None:
    rng = random.Random(20)
    edges = [0.0, 0.5, -0.5, -1.0, -1.000001, -0.0000005, 0.0000005, 0.0000015, 1764637000.9999995,
             1764637000.9999996, 1764637001.0000004, 1764637000.999999]
    spread = [rng.uniform(-2e9, 4e9) for _ in range(20_000)]
    halves = [rng.randint(-10**9, 4 * 10**9) + rng.randint(0, 2 * 10**6) / 2e6 for _ in range(20_000)]  # ties
    for epoch in edges + spread + halves:
        assert (format_time(epoch), format_micro_time(epoch)) == expected(epoch), epoch


def test_a_second_after_another_and_back() -> None:
    for epoch in (1764637000.2, 1764637000.7, 1764637001.1, 1764637000.9, 1764636999.0, 1764637001.0):
        assert (format_time(epoch), format_micro_time(epoch)) == expected(epoch)
    assert format_time(1764637001.1) == "2025-12-02T00:56:41Z"
