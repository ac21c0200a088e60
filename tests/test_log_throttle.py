"""Storm-prone log lines: at most one per interval, the next one counting what was held back."""

from __future__ import annotations

from runtime.logs import Throttle


def test_one_line_per_interval_and_the_next_says_how_many_were_held() -> None:
    now = [100.0]
    throttle = Throttle(1.0, clock=lambda: now[0])
    assert throttle.allow() == 0
    assert [throttle.allow() for _ in range(5)] == [None] * 5
    now[0] += 0.99
    assert throttle.allow() is None
    now[0] += 0.02
    assert throttle.allow() == 6
    now[0] += 5
    assert throttle.allow() == 0


def test_a_throttled_warning_names_what_was_held_back() -> None:
    now = [0.0]
    lines: list[tuple[str, dict]] = []

    class Log:
        def warning(self, event: str, **fields: object) -> None:
            lines.append((event, fields))

    throttle = Throttle(1.0, clock=lambda: now[0])
    for _ in range(3):
        throttle.warning(Log(), "failed", key="k")
    throttle.warning(None, "failed")  # counted though nothing is written
    now[0] += 1.5
    throttle.warning(Log(), "failed", key="k2")
    assert lines == [("failed", {"key": "k", "not_logged": 0}), ("failed", {"key": "k2", "not_logged": 3})]
