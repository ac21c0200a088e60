"""Shared pieces of the benchmark scripts: a throw-away cluster, percentile arithmetic, actor health."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats

from protocol import codec, subjects
from runtime.bus import connect
from runtime.client import ApiClient
from runtime.nats_server import NatsServer, NatsServerConfig, free_port
from shoal.up_auth import CLI_USER, UpAuth


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, latencies_s: list[float], elapsed: float) -> dict[str, Any]:
    ms = [v * 1000 for v in latencies_s]
    return {"name": name, "n": len(ms), "p50_ms": round(percentile(ms, 50), 3),
            "p99_ms": round(percentile(ms, 99), 3), "mean_ms": round(statistics.fmean(ms), 3) if ms else 0.0,
            "per_s": round(len(ms) / elapsed, 1) if elapsed > 0 else 0.0}


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


async def scheduler_health(client: ApiClient) -> dict[str, Any]:
    """The scheduler's health reply (pending, synced, ...), or {} while it does not answer."""
    try:
        msg = await client.nc.request(subjects.health("scheduler"), b"", timeout=2)
        health: dict[str, Any] = codec.check_reply(codec.decode(msg.data))["health"]
        return health
    except Exception:
        return {}


@dataclass
class Cluster:
    server: NatsServer
    procs: list[subprocess.Popen[bytes]]
    client: ApiClient
    state: Path


@asynccontextmanager
async def cluster(api_actors: int = 1, extra: list[list[str]] | None = None,
                  api_args: list[str] | None = None, auth: bool = False) -> AsyncIterator[Cluster]:
    """nats-server + API actor processes (with ``api_args``) (+ ``extra`` module command lines), torn down
    afterwards. ``auth``: NATS users and permissions as ``shoal up`` makes them (``shoal.up_auth``): the API
    actors connect as ``api``, ``extra`` processes and the client as ``cli``."""
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        state = Path(tmp)
        users = UpAuth.ensure(state / "nats", "bench", "127.0.0.1") if auth else None
        server = NatsServer(NatsServerConfig(state_dir=state / "nats", port=free_port(),
                                             extra=users.server_config() if users else ""))
        await server.start()
        env = dict(os.environ, SHOAL_LOG_LEVEL="warning")
        procs = []
        for i, args in enumerate([["actors.api", *(api_args or [])]] * api_actors + (extra or [])):
            identity = users.env("api" if i < api_actors else CLI_USER) if users else {}
            procs.append(subprocess.Popen([sys.executable, "-m", *args, "--server", server.url],
                                          env={**env, **identity}))
        if users:
            nc = await connect(users.context(server.url, "bench").bus(), name="bench", reconnect=False)
        else:
            nc = await nats.connect(server.url)
        client = ApiClient(nc)
        deadline = time.monotonic() + 60
        while True:
            try:
                await client.info()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        try:
            yield Cluster(server, procs, client, state)
        finally:
            await nc.close()
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
            await server.stop()
