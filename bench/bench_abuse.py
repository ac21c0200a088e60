"""The API actor under abuse: its memory while a client opens thousands of watches and never reads, and
what Secret encryption and the audit stream cost a write, in the same run.

Run: ``.venv/bin/python -m bench.bench_abuse [--watches 3000] [--objects 500] [--writes 300]``.

* Slow-watch attack (issue 18): ``--objects`` ConfigMaps of 2 KiB are stored; an attacker on a raw TCP
  connection (it never reads its socket) subscribes an inbox per watch and asks for ``--watches`` watches of
  every ConfigMap, then stops reading; a writer keeps modifying objects. The API actor's RSS is sampled idle
  and during the attack (peak); the target is at most 2x idle.
* Cost: sequential create latency (p50/p99) of ConfigMaps and Secrets on three API actors in turn: audited
  and encrypting Secrets, encrypting only (``--no-audit``), neither. Audit cost: ConfigMaps, first vs
  second; encryption cost: Secrets, second vs third.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import cluster, percentile, progress, stop_on_signals
from protocol import codec
from runtime.client import ApiClient


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def attacker(url: str, watches: int) -> socket.socket:
    """A raw NATS connection that subscribes ``watches`` inboxes and asks for a watch on each, then never
    reads: every event pushed to it piles up wherever the server or the API actor lets it."""
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.recv(4096)  # INFO
    lines = [b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"echo":false}\r\n']
    prefix = "_INBOX.attacker"
    for i in range(watches):
        body = codec.encode({"inbox": f"{prefix}.w.{i}", "resourceVersion": None})
        lines.append(f"SUB {prefix}.w.{i} {i + 1}\r\n".encode())
        lines.append(f"PUB shoal.api.watch.configmaps._all {prefix}.r{i} {len(body)}\r\n".encode() + body + b"\r\n")
    sock.sendall(b"".join(lines))
    return sock


async def churn(client: ApiClient, objects: int, stop: asyncio.Event) -> int:
    n = 0
    while not stop.is_set():
        name = f"obj-{n % objects}"
        try:
            await client.patch("configmaps", name, {"data": {"n": str(n)}})
        except Exception:
            await asyncio.sleep(0.05)
        n += 1
        await asyncio.sleep(0.005)
    return n


async def attack(watches: int, objects: int, seconds: float) -> dict[str, Any]:
    async with cluster() as c:
        client, pid = c.client, c.procs[0].pid
        payload = "x" * 2048
        for i in range(objects):
            await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"obj-{i}"},
                                 "data": {"payload": payload}})
        await asyncio.sleep(1.0)
        idle = rss_mib(pid)
        progress(f"API actor idle: {idle:.0f} MiB with {objects} objects; opening {watches} unread watches")
        sock = attacker(c.server.url, watches)
        stop = asyncio.Event()
        writer = asyncio.create_task(churn(client, objects, stop))
        peak, started = idle, time.monotonic()
        while time.monotonic() - started < seconds:
            await asyncio.sleep(0.25)
            peak = max(peak, rss_mib(pid))
        stop.set()
        writes = await writer
        info = await client.info()
        sock.close()
        alive = c.procs[0].poll() is None
        progress(f"peak {peak:.0f} MiB ({peak / idle:.2f}x idle); {writes} writes; API alive: {alive}")
        return {"watches": watches, "objects": objects, "idle_rss_mib": round(idle, 1),
                "peak_rss_mib": round(peak, 1), "ratio": round(peak / idle, 2), "writes_during": writes,
                "api_alive": alive, "watches_left": info.get("watches")}


async def write_latency(client: ApiClient, kind: str, n: int, tag: str) -> list[float]:
    out = []
    for i in range(n):
        obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": {"name": f"{tag}-{i}"}}
        obj["data"] = {"k": "dmFsdWU="} if kind == "Secret" else {"k": "value"}
        started = time.perf_counter()
        await client.create(obj)
        out.append((time.perf_counter() - started) * 1000)
    return out


async def costs(writes: int, rounds: int = 6) -> dict[str, Any]:
    """Three API actors (each with its own nats-server) running at once: audited with encryption, not audited
    with encryption, neither; measured in interleaved rounds so the machine's drift hits all three alike."""
    figures: dict[str, Any] = {}
    configs = ("audit_enc", "enc", "plain")
    with tempfile.TemporaryDirectory(prefix="shoal-bench-enc-") as tmp:
        config = str(Path(tmp) / "encryption.yaml")
        args = {"audit_enc": ["--encryption-config", config], "enc": ["--no-audit", "--encryption-config", config],
                "plain": ["--no-audit"]}
        async with contextlib.AsyncExitStack() as stack:
            clusters = {tag: await stack.enter_async_context(cluster(api_args=args[tag])) for tag in configs}
            for c in clusters.values():
                for warm in range(50):
                    await c.client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"w-{warm}"}})
            lat: dict[str, list[float]] = {}
            per_round = max(1, writes // rounds)
            for r in range(rounds):
                for tag, c in clusters.items():
                    for kind in ("ConfigMap", "Secret"):
                        lat.setdefault(f"{kind.lower()}_{tag}", []).extend(
                            await write_latency(c.client, kind, per_round, f"{kind.lower()}-{r}"))
    for key, values in lat.items():
        figures[f"{key}_p50_ms"] = round(percentile(values, 50), 3)
        figures[f"{key}_p99_ms"] = round(percentile(values, 99), 3)
    figures["audit_ratio_p50"] = round(figures["configmap_audit_enc_p50_ms"] / figures["configmap_enc_p50_ms"], 2)
    figures["encryption_ratio_p50"] = round(figures["secret_enc_p50_ms"] / figures["secret_plain_p50_ms"], 2)
    progress(f"create p50: configmap {figures['configmap_audit_enc_p50_ms']} ms audited vs "
             f"{figures['configmap_enc_p50_ms']} ms not ({figures['audit_ratio_p50']}x); secret "
             f"{figures['secret_enc_p50_ms']} ms encrypted vs {figures['secret_plain_p50_ms']} ms not "
             f"({figures['encryption_ratio_p50']}x)")
    return figures


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    result = {"attack": await attack(args.watches, args.objects, args.seconds)}
    if args.writes:
        result["cost"] = await costs(args.writes)
    return result


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watches", type=int, default=3000)
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
