"""Exec round-trip latency: through the gateway, over NATS (``shoal exec``'s path) and ``podman exec``, same run,
same container.

Run: ``.venv/bin/python -m bench.bench_exec [--n 30]``. Starts nats-server, an API actor, a gateway and a kubelet
on Podman (processes), runs one busybox pod, then times ``--n`` executions of ``true`` each way:

* ``podman exec`` of the pod's container (the CLI against the kubelet's Podman service: the floor);
* Podman's exec API driven directly (``agents.kubelet.podman_streams``: what the kubelet itself spends);
* over NATS from this process (``runtime.node_stream.open_stream`` + ``run_exec``: ``shoal exec`` minus the
  Python start-up), and the whole ``shoal exec`` process (wall);
* through the gateway: a ``v5.channel.k8s.io`` websocket from this process (aiohttp), and the whole
  ``kubectl exec`` process (wall).
Each time is from the request to the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from agents.kubelet.images import BUSYBOX_IMAGE
from agents.kubelet.podman_streams import PodmanStreams
from bench.common import cluster, percentile, progress, stop_on_signals
from runtime.nats_server import free_port
from runtime.node_stream import open_stream, run_exec
from shoal.kubeconfig import ensure_credentials, kubeconfig


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


async def _times(what: str, fn: Callable[[], Awaitable[int]], n: int) -> dict[str, float]:
    await fn()  # warm
    times = []
    for _ in range(n):
        started = time.perf_counter()
        code = await fn()
        times.append(time.perf_counter() - started)
        if code != 0:
            raise RuntimeError(f"{what}: exit {code}")
    progress(f"{what}: p50 {ms(percentile(times, 50))} ms")
    return {"p50_ms": ms(percentile(times, 50)), "p99_ms": ms(percentile(times, 99))}


async def _process(argv: list[str], env: dict[str, str] | None = None) -> int:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL, env=env)
    return await proc.wait()


async def _websocket_exec(http: aiohttp.ClientSession, pod: str) -> int:
    url = f"/api/v1/namespaces/default/pods/{pod}/exec?command=true&stdout=true&stderr=true"
    async with http.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        async for msg in ws:
            data = bytes(msg.data)
            if data[:1] == b"\x03":
                return 0 if json.loads(data[1:]).get("status") == "Success" else 1
    return 1


async def run(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shoal-bench-exec-") as tmp:
        creds = ensure_credentials(Path(tmp) / "gateway")
        port = free_port()
        node = f"bench-exec-{uuid.uuid4().hex[:6]}"
        gateway = ["actors.gateway", "--listen", f"127.0.0.1:{port}", "--tls-cert", str(creds.cert),
                   "--tls-key", str(creds.key), "--admin-token-file", str(creds.token_file)]
        kubelet = ["agents.kubelet", "--node-name", node, "--state-dir", f"{tmp}/kubelet", "--pod-network",
                   "loopback", "--no-events"]
        async with cluster(extra=[gateway, kubelet]) as c:
            client = c.client
            progress("waiting for the kubelet and a busybox pod")
            await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "target"},
                                 "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0, "containers": [
                                     {"name": "main", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"]}]}})
            deadline = time.monotonic() + 120
            while True:
                pod = await client.get("Pod", "target", "default")
                statuses = (pod.get("status") or {}).get("containerStatuses") or []
                if statuses and "running" in (statuses[0].get("state") or {}):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the pod did not run: {pod.get('status')}")
                await asyncio.sleep(0.2)
            container_id = statuses[0]["containerID"].split("://")[-1]
            socket = f"unix://{tmp}/kubelet/podman/podman.sock"
            streams = PodmanStreams(socket)
            result: dict[str, Any] = {"n": n}
            try:
                result["podman_exec_cli"] = await _times(
                    "podman exec", lambda: _process(["podman", "--url", socket, "exec", container_id, "true"]), n)

                async def direct() -> int:
                    process = await streams.exec(container_id, ["true"], stdin=False, tty=False)
                    while await process.read() is not None:
                        pass
                    process.close()
                    return await streams.exit_code(process.exec_id) or 0

                result["podman_exec_api"] = await _times("Podman exec API", direct, n)

                async def over_nats() -> int:
                    session = await open_stream(client, "exec", "default", "target", command=["true"], stdin=False,
                                                tty=False)
                    return await run_exec(session, None, lambda _c, _d: None)

                result["nats_exec"] = await _times("exec over NATS", over_nats, n)
                env = {**os.environ, "HOME": tmp}
                result["shoal_exec_process"] = await _times("shoal exec (process)", lambda: _process(
                    [sys.executable, "-m", "shoal", "--server", c.server.url, "exec", "target", "--", "true"], env),
                    max(3, n // 3))
                context = ssl.create_default_context(cafile=str(creds.ca_cert))
                async with aiohttp.ClientSession(f"https://127.0.0.1:{port}",
                                                 headers={"Authorization": f"Bearer {creds.token()}"},
                                                 connector=aiohttp.TCPConnector(ssl=context)) as http:
                    result["gateway_websocket_exec"] = await _times(
                        "exec through the gateway (websocket)", lambda: _websocket_exec(http, "target"), n)
                kubectl = shutil.which("kubectl")
                if kubectl:
                    path = Path(tmp) / "kubeconfig"
                    path.write_text(yaml.safe_dump(kubeconfig(f"https://127.0.0.1:{port}", creds)))
                    result["kubectl_exec_process"] = await _times("kubectl exec (process)", lambda: _process(
                        [kubectl, "--kubeconfig", str(path), "exec", "target", "--", "true"], env), max(3, n // 3))
            finally:
                await client.delete("Pod", "target", "default", grace_period=0)
                await asyncio.sleep(1)
                subprocess.run(["podman", "--url", socket, "pod", "rm", "-f", "--filter",
                                f"label=io.shoal.node={node}"], capture_output=True, check=False)
            return result


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    r = asyncio.run(run(args.n))
    print(f"exec of `true`, {r['n']} times            {'p50 ms':>10} {'p99 ms':>10}")
    for key, label in (("podman_exec_cli", "podman exec (CLI)"), ("podman_exec_api", "Podman exec API (kubelet's)"),
                       ("nats_exec", "over NATS (shoal exec's)"), ("gateway_websocket_exec", "gateway websocket v5"),
                       ("shoal_exec_process", "shoal exec (whole process)"),
                       ("kubectl_exec_process", "kubectl exec (whole process)")):
        if key in r:
            print(f"{label:<36} {r[key]['p50_ms']:>10} {r[key]['p99_ms']:>10}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)


if __name__ == "__main__":
    main()
