"""``NatsServer.start`` leaves no server behind when the start does not finish: stopped while it waits for the
server to listen (a benchmark interrupted at that moment once left its nats-server running), or timed out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runtime.nats_server import NatsServer, NatsServerConfig, NatsServerError, free_port


async def test_a_start_cancelled_while_waiting_stops_the_server(tmp_path: Path) -> None:
    server = NatsServer(NatsServerConfig(state_dir=tmp_path, port=free_port()))
    task = asyncio.create_task(server.start())
    while server.proc is None:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert server.proc.poll() is not None


async def test_a_start_that_times_out_stops_the_server(tmp_path: Path) -> None:
    server = NatsServer(NatsServerConfig(state_dir=tmp_path, port=free_port()))
    with pytest.raises(NatsServerError, match="did not listen"):
        await server.start(timeout=0.0)
    assert server.proc is not None and server.proc.poll() is not None
