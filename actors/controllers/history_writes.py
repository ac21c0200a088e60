"""Sending the writes of a ``daemonset_history.HistoryPlan`` (the DaemonSet and StatefulSet controllers).

A revision already there is one an earlier pass created that the cache has not seen yet; a revision gone
before its renumbering or deletion needs neither.
"""

from __future__ import annotations

import contextlib

from actors.controllers.daemonset_history import HistoryPlan
from protocol.errors import AlreadyExists, NotFound
from runtime.client import ApiClient


async def write_history(client: ApiClient, history: HistoryPlan, namespace: str | None) -> None:
    """Create the current template's revision, renumber it, delete the pruned ones, as ``history`` says."""
    with contextlib.suppress(AlreadyExists):  # created by an earlier pass the cache has not seen yet
        if history.create is not None:
            await client.create(history.create)
    if history.bump is not None:
        name, number = history.bump
        with contextlib.suppress(NotFound):
            await client.patch("ControllerRevision", name, {"revision": number}, namespace)
    for name in history.delete:
        with contextlib.suppress(NotFound):
            await client.delete("ControllerRevision", name, namespace)
