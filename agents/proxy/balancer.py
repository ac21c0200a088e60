"""Choosing a backend: round-robin, with optional client-IP affinity. Pure and synchronous."""

from __future__ import annotations

import time
from collections.abc import Callable

from agents.proxy.rules import Backend


class Balancer:
    def __init__(self, backends: tuple[Backend, ...] = (), affinity_timeout: int | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backends = backends
        self.affinity_timeout = affinity_timeout
        self._next = 0
        self._affinity: dict[str, tuple[Backend, float]] = {}
        self._clock = clock

    def update(self, backends: tuple[Backend, ...], affinity_timeout: int | None) -> None:
        """New backend set: affinities to removed backends are forgotten at once."""
        self.backends = backends
        self.affinity_timeout = affinity_timeout
        alive = set(backends)
        self._affinity = {ip: entry for ip, entry in self._affinity.items() if entry[0] in alive}
        if affinity_timeout is None:
            self._affinity.clear()

    def pick(self, client_ip: str, *, exclude: frozenset[Backend] = frozenset()) -> Backend | None:
        candidates = [b for b in self.backends if b not in exclude]
        if not candidates:
            return None
        now = self._clock()
        if self.affinity_timeout is not None:
            sticky = self._affinity.get(client_ip)
            if sticky is not None and sticky[1] > now and sticky[0] in candidates:
                self._affinity[client_ip] = (sticky[0], now + self.affinity_timeout)
                return sticky[0]
        backend = candidates[self._next % len(candidates)]
        self._next += 1
        if self.affinity_timeout is not None:
            self._affinity[client_ip] = (backend, now + self.affinity_timeout)
        return backend
