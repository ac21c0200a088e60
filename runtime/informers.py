"""Shared informers: one list+watch per (kind, namespace, selectors) however many controllers use it."""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.client import ApiClient, kind_info
from runtime.informer import Informer
from runtime.supervisor import Supervisor


class InformerFactory:
    def __init__(self, client: ApiClient, *, log: Any = None) -> None:
        self.client = client
        self.log = log
        self._informers: dict[tuple[str, str | None, str | None, str | None], Informer] = {}
        self._started: set[tuple[str, str | None, str | None, str | None]] = set()

    def informer(self, kind: str, namespace: str | None = None, *, label_selector: str | None = None,
                 field_selector: str | None = None) -> Informer:
        key = (kind_info(kind).kind, namespace, label_selector, field_selector)
        found = self._informers.get(key)
        if found is None:
            found = Informer(self.client, kind, namespace, label_selector=label_selector,
                             field_selector=field_selector, log=self.log)
            self._informers[key] = found
        return found

    def start(self, supervisor: Supervisor) -> None:
        """Start every informer created so far (call again after adding more)."""
        for key, informer in self._informers.items():
            if key not in self._started:
                self._started.add(key)
                supervisor.spawn(f"informer-{key[0]}-{key[1] or 'all'}-{len(self._started)}", informer.run)

    async def wait_synced(self, timeout: float = 120.0) -> None:
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in self._informers.values())), timeout)
