"""Running the ``shoal`` tool as a real subprocess against the test cluster (nats-server + API actor).

Subprocesses are awaited with asyncio so the event loop keeps serving the in-process API actor.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from actors.api.server import ApiActor
from runtime.nats_server import NatsServer, free_port

REPO = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.rc}\n--- stdout\n{self.out}--- stderr\n{self.err}"


class ShoalCli:
    """``await cli("get", "pods")`` runs ``python -m shoal --server URL get pods`` and returns its Result."""

    def __init__(self, url: str, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.env = {**cli_env(), **(env or {})}
        """``cli_env()`` and these (``SHOAL_CONTEXT`` of a ``shoal up`` cluster, for one)."""

    def argv(self, args: Sequence[str]) -> list[str]:
        return [sys.executable, "-m", "shoal", "--server", self.url, *args]

    async def __call__(self, *args: str, stdin: str | None = None, timeout: float = 60) -> Result:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(args), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env, cwd=REPO)
        data = stdin.encode() if stdin is not None else None
        try:
            out, err = await asyncio.wait_for(proc.communicate(data), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"`shoal {' '.join(args)}` did not finish within {timeout}s") from None
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

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


async def read_until(stream: asyncio.StreamReader | None, needle: str, timeout: float = 30) -> str:
    """Read lines until one contains ``needle``; return everything read."""
    assert stream is not None
    seen = ""

    async def reader() -> str:
        nonlocal seen
        while True:
            line = await stream.readline()
            if not line:
                raise AssertionError(f"stream ended before {needle!r}; got:\n{seen}")
            seen += line.decode()
            if needle in line.decode():
                return seen

    try:
        return await asyncio.wait_for(reader(), timeout)
    except TimeoutError:
        raise AssertionError(f"no {needle!r} within {timeout}s; got:\n{seen}") from None
