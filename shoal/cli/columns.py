"""The table columns of ``shoal get``: each kind's strategy defines them (``protocol.kinds``), so the CLI
and the HTTP gateway's Table output print the same; ``-o wide`` adds the priority-1 columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocol.kinds import Column, strategy_for
from protocol.objects import Obj


def columns_for(kind: str, *, wide: bool = False) -> list[Column]:
    return strategy_for(kind).columns_for(wide=wide)


def sort_key(kind: str) -> Callable[[Obj], Any]:
    """Events by when they last happened; everything else by namespace, then name."""
    return strategy_for(kind).sort_key
