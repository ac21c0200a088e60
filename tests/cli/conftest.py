"""Running the ``shoal`` tool as a real subprocess against the test cluster (nats-server + API actor).

Subprocesses are awaited with asyncio so the event loop keeps serving the in-process API actor.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from actors.api.server import ApiActor
from runtime.nats_server import NatsServer, free_port
from tests.subprocesses import Result, read_until, run_tool

__all__ = ["REPO", "Result", "ShoalCli", "cli_env", "read_until"]

REPO = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ShoalCli:
    """``await cli("get", "pods")`` runs ``python -m shoal --server URL get pods`` and returns its Result."""

    def __init__(self, url: str, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.env = {**cli_env(), **(env or {})}
        """``cli_env()`` and these (``SHOAL_CONTEXT`` of a ``shoal up`` cluster, for one)."""

    def argv(self, args: Sequence[str]) -> list[str]:
        return [sys.executable, "-m", "shoal", "--server", self.url, *args]

    async def __call__(self, *args: str, stdin: str | None = None, timeout: float = 60) -> Result:
        return await run_tool(self.argv(args), what=f"shoal {' '.join(args)}", env=self.env, cwd=REPO,
                              stdin=stdin, timeout=timeout)

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self.argv(args), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env, cwd=REPO)


@pytest.fixture
def cli(nats_server: NatsServer, api: ApiActor) -> ShoalCli:
    return ShoalCli(nats_server.url)


@pytest.fixture
def offline_cli() -> ShoalCli:
    """Pointed at a port where nothing listens."""
    return ShoalCli(f"nats://127.0.0.1:{free_port()}")

