"""The data-path port: what carries Service traffic. The userspace proxy is the implementation here;
an nftables data path would implement the same two methods."""

from __future__ import annotations

from typing import Protocol

from agents.proxy.rules import Rule


class DataPath(Protocol):
    async def apply(self, rules: list[Rule]) -> None:
        """Make the node forward exactly these rules (add, change and remove listeners and backends)."""

    async def close(self) -> None: ...

    def stats(self) -> dict[str, int]: ...
