"""Shared pieces of the benchmark scripts: a throw-away cluster (with a gateway in front of it, when asked),
percentile arithmetic, actor health, creating objects and waiting for nodes and statuses through an
overloaded API actor, printing a result."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import nats
from nats.aio.client import Client

from protocol import codec, subjects
from protocol.errors import AlreadyExists, ShoalError, Unavailable
from protocol.objects import Obj, condition_true, meta
from runtime.bus import connect
from runtime.client import ApiClient
from runtime.nats_server import NatsServer, NatsServerConfig, free_port
from shoal.kubeconfig import Credentials, ensure_credentials
from shoal.up_auth import CLI_USER, UpAuth


def stop_on_signals() -> None:
    """Let SIGINT and SIGTERM stop a benchmark through its cleanup, so the servers it started in sessions of
    their own (nats-server, a kubelet's Podman pod) stop with it. Started in the background by a shell, a
    program ignores SIGINT; SIGTERM's default ends it at once, cleanup unrun. Here SIGINT is Python's default
    (``asyncio.run`` turns it into cancelling the main task) and SIGTERM is turned into a SIGINT."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: signal.raise_signal(signal.SIGINT))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def summary(name: str, latencies_s: list[float], elapsed: float) -> dict[str, Any]:
    ms = [v * 1000 for v in latencies_s]
    return {"name": name, "n": len(ms), "p50_ms": round(percentile(ms, 50), 3),
            "p99_ms": round(percentile(ms, 99), 3), "mean_ms": round(statistics.fmean(ms), 3) if ms else 0.0,
            "per_s": round(len(ms) / elapsed, 1) if elapsed > 0 else 0.0}


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


async def wait_for_api(client: ApiClient, timeout: float = 60.0) -> None:
    """Until an API actor answers (``admin.info``), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await client.info()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def actor_health(client: ApiClient, actor: str) -> dict[str, Any]:
    """An actor's health reply (the scheduler's: pending, synced, ...; the API's: lanes, group commit, ...), or
    {} while it does not answer."""
    try:
        msg = await client.nc.request(subjects.health(actor), b"", timeout=2)
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


def api_arguments(args: argparse.Namespace) -> list[str]:
    """The API actor's command-line arguments a benchmark's own ``--group-commit`` asks for (none: its defaults)."""
    return [] if args.group_commit is None else ["--group-commit", str(args.group_commit)]


def process_commands(api_actors: int, extra: list[list[str]] | None = None,
                     api_args: list[str] | None = None) -> list[list[str]]:
    """The module command lines ``cluster`` starts, in order: ``api_actors`` API actors with the same arguments
    (they join one NATS queue group and need no coordination), then ``extra``."""
    return [["actors.api", *(api_args or [])] for _ in range(api_actors)] + [list(args) for args in extra or []]


def profiled(module: str) -> list[str]:
    """The interpreter arguments that run ``module``: under cProfile, writing ``<dir>/<module>.prof``, when
    ``BENCH_PROFILE_DIR=<dir>`` is set (every process a benchmark starts is profiled)."""
    profile = os.environ.get("BENCH_PROFILE_DIR")
    return ["-m", "cProfile", "-o", f"{profile}/{module}.prof", "-m", module] if profile else ["-m", module]


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
        procs: list[subprocess.Popen[bytes]] = []
        nc: Client | None = None
        try:  # from here on a stop (SIGINT while the API starts) leaves no server behind
            for i, args in enumerate(process_commands(api_actors, extra, api_args)):
                identity = users.env("api" if i < api_actors else CLI_USER) if users else {}
                procs.append(subprocess.Popen([sys.executable, *profiled(args[0]), *args[1:], "--server", server.url],
                                              env={**env, **identity}))
            if users:
                nc = await connect(users.context(server.url, "bench").bus(), name="bench", reconnect=False)
            else:
                nc = await nats.connect(server.url)
            client = ApiClient(nc)
            await wait_for_api(client)
            yield Cluster(server, procs, client, state)
        finally:
            if nc is not None:
                await nc.close()
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
            await server.stop()


@dataclass
class GatewayCluster:
    cluster: Cluster
    http: aiohttp.ClientSession
    """HTTPS to the gateway, its base URL set, the admin token sent with every request."""
    base: str
    creds: Credentials
    tmp: Path
    """A directory removed with the cluster (the credentials live below it)."""


@asynccontextmanager
async def gateway_cluster(prefix: str) -> AsyncIterator[GatewayCluster]:
    """``cluster`` with a gateway process (HTTPS, admin token) on a free port, answering ``/readyz``."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        creds = ensure_credentials(Path(tmp) / "gateway")
        port = free_port()
        gateway = ["actors.gateway", "--listen", f"127.0.0.1:{port}", "--tls-cert", str(creds.cert),
                   "--tls-key", str(creds.key), "--admin-token-file", str(creds.token_file)]
        async with cluster(extra=[gateway]) as c:
            base = f"https://127.0.0.1:{port}"
            context = ssl.create_default_context(cafile=str(creds.ca_cert))
            async with aiohttp.ClientSession(base, headers={"Authorization": f"Bearer {creds.token()}"},
                                             connector=aiohttp.TCPConnector(ssl=context)) as http:
                await _gateway_ready(http)
                yield GatewayCluster(c, http, base, creds, Path(tmp))


async def _gateway_ready(http: aiohttp.ClientSession) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            async with http.get("/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not answer within 60 s")
        await asyncio.sleep(0.1)


async def create_all(client: ApiClient, objects: list[Obj], concurrency: int = 64) -> None:
    """Create ``objects``, ``concurrency`` at a time, each retried (up to 20 times, backing off) while the API
    sheds it; one already there counts as created (an attempt that timed out went through)."""
    sem = asyncio.Semaphore(concurrency)

    async def one(obj: Obj) -> None:
        async with sem:
            for attempt in range(20):
                try:
                    await client.create(obj)
                    return
                except AlreadyExists:
                    return
                except ShoalError as exc:
                    if not exc.retryable or attempt == 19:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))

    await asyncio.gather(*(one(o) for o in objects))


async def retrying(call: Callable[[], Awaitable[Obj]], what: str) -> Obj:
    """``call()``, again after a pause while an overloaded API actor sheds it (Unavailable)."""
    while True:
        try:
            return await call()
        except Unavailable as exc:
            progress(f"{what}: {exc.message}; asking again")
            await asyncio.sleep(2)


async def wait_nodes_ready(client: ApiClient, nodes: int, timeout: float, interval: float = 2.0) -> float:
    """Seconds until ``nodes`` nodes are Ready (a failed list, from an overloaded API actor, is asked again)."""
    started = time.monotonic()
    while True:
        try:
            ready = sum(1 for n in (await client.list("Node")).items if condition_true(n, "Ready"))
        except ShoalError as exc:
            progress(f"hollow nodes: list failed ({exc.code}); asking again")
            ready = -1
        progress(f"hollow nodes Ready: {ready}/{nodes}")
        if ready == nodes:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise SystemExit(f"only {ready}/{nodes} hollow nodes became Ready")
        await asyncio.sleep(interval)


async def wait_status(client: ApiClient, kind: str, name: str, done: Any, what: str, timeout: float) -> float:
    """Seconds until ``done(status, object)`` holds, polling the object twice a second."""
    started = time.monotonic()
    last = 0.0
    while True:
        try:
            obj = await client.get(kind, name, "default")
        except ShoalError:
            obj = {}
        status = obj.get("status") or {}
        now = time.monotonic()
        if obj and int(status.get("observedGeneration") or 0) >= int(meta(obj).get("generation") or 0) and done(
                status, obj):
            return now - started
        if now - last >= 5:
            last = now
            shown = {k: v for k, v in status.items() if k != "conditions"}
            progress(f"{what}: {now - started:5.0f}s {json.dumps(shown)}")
        if now - started > timeout:
            raise SystemExit(f"{what}: not done after {timeout:.0f}s: {status}")
        await asyncio.sleep(0.5)


async def paced(n: int, rate: float, send: Callable[[int], Awaitable[object]]) -> float:
    """Call ``send(i)`` for i in 0..n-1 at ``rate`` a second, each awaited in its own task, all awaited at the
    end; the rate achieved (calls a second)."""
    interval, t0 = 1.0 / rate, time.perf_counter()
    inflight: set[asyncio.Task[Any]] = set()
    for i in range(n):
        delay = t0 + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(send(i))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
    await asyncio.gather(*inflight)
    return n / (time.perf_counter() - t0)


def hollow_options(parser: argparse.ArgumentParser) -> None:
    """The options of a benchmark on hollow nodes: how they run, how long to wait, where the JSON goes."""
    parser.add_argument("--hollow-procs", type=int, default=1, help="processes the hollow nodes are spread over")
    parser.add_argument("--lease-interval", type=float, default=10.0, help="hollow node lease renewal, seconds")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", default=None)


def write_json(result: dict[str, Any], path: str | None) -> None:
    """Write ``result`` to ``path``, when one is given."""
    if path:
        Path(path).write_text(json.dumps(result, indent=2))


def report(result: dict[str, Any], json_path: str | None) -> None:
    """Print ``result`` a line a figure, write it to ``json_path`` when given, exit 1 when it is not correct."""
    for key, value in result.items():
        print(f"  {key:<26} {value}")
    write_json(result, json_path)
    if not result["correct"]:
        raise SystemExit(1)


async def get_create_latencies(client: ApiClient, n: int, tag: str,
                               namespace: str = "default") -> tuple[list[float], list[float]]:
    """(get ms, create ms) of ``n`` ConfigMaps ``<tag>-<i>``: each created, then read back."""
    gets, creates = [], []
    for i in range(n):
        started = time.perf_counter()
        await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{tag}-{i}"},
                             "data": {"k": "value"}}, namespace)
        creates.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        await client.get("ConfigMap", f"{tag}-{i}", namespace)
        gets.append((time.perf_counter() - started) * 1000)
    return gets, creates


async def get_create_a_b(clients: dict[str, ApiClient], n: int, rounds: int, namespace: str = "default",
                         **extra: Any) -> dict[str, Any]:
    """Gets and creates through two or more clients (``{tag: client}``, the first tag measured against the
    second, the baseline) in interleaved rounds, the order rotating each round, so the machine's drift hits
    all alike: p50/p99 per tag and verb, ``<verb>_ratio_p50`` = first / second and, for a third tag and
    later, ``<verb>_ratio_<tag>_p50`` = that tag / second."""
    tags = list(clients)
    first, second = tags[0], tags[1]
    lat: dict[str, list[float]] = {}
    for tag, client in clients.items():
        await get_create_latencies(client, 30, f"warm-{tag}", namespace)
    per_round = max(1, n // rounds)
    for r in range(rounds):
        order = tags[r % len(tags):] + tags[:r % len(tags)] if len(tags) > 2 else (
            tags if r % 2 == 0 else tags[::-1])
        for tag in order:
            gets, creates = await get_create_latencies(clients[tag], per_round, f"{tag}-r{r}", namespace)
            lat.setdefault(f"get_{tag}", []).extend(gets)
            lat.setdefault(f"create_{tag}", []).extend(creates)
    figures: dict[str, Any] = {"n": n, "rounds": rounds, **extra}
    for key, values in lat.items():
        figures[f"{key}_p50_ms"] = round(percentile(values, 50), 3)
        figures[f"{key}_p99_ms"] = round(percentile(values, 99), 3)
    for verb in ("get", "create"):
        figures[f"{verb}_ratio_p50"] = round(figures[f"{verb}_{first}_p50_ms"] / figures[f"{verb}_{second}_p50_ms"], 2)
        for tag in tags[2:]:
            figures[f"{verb}_ratio_{tag}_p50"] = round(
                figures[f"{verb}_{tag}_p50_ms"] / figures[f"{verb}_{second}_p50_ms"], 2)
    progress(f"get p50 {figures[f'get_{first}_p50_ms']} ms {first} vs {figures[f'get_{second}_p50_ms']} ms "
             f"{second} ({figures['get_ratio_p50']}x); create p50 {figures[f'create_{first}_p50_ms']} vs "
             f"{figures[f'create_{second}_p50_ms']} ms ({figures['create_ratio_p50']}x)")
    for tag in tags[2:]:
        progress(f"{tag}: get p50 {figures[f'get_{tag}_p50_ms']} ms ({figures[f'get_ratio_{tag}_p50']}x), "
                 f"create p50 {figures[f'create_{tag}_p50_ms']} ms ({figures[f'create_ratio_{tag}_p50']}x)")
    return figures
