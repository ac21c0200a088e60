"""Helpers shared by the kubelet tests: pod manifests, starting a kubelet actor, waiting for a condition."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from agents.kubelet.agent import KubeletAgent
from protocol.errors import NotFound
from protocol.objects import Obj
from runtime.client import ApiClient

BUILD_IMAGES = Path(__file__).resolve().parents[2] / "deploy" / "images" / "build.sh"


def debian_images(env: Mapping[str, str], *names: str) -> list[str]:
    """``localhost/shoal/<name>:bookworm`` for each name, built from Debian packages where missing
    (``deploy/images/build.sh``: ~1 minute each, from the Debian mirror); the test is skipped, with the
    reason, when they cannot be built (no mirror, no mmdebstrap)."""
    done = subprocess.run([str(BUILD_IMAGES), *names], env=dict(env), capture_output=True, text=True,
                          timeout=900, check=False)
    if done.returncode != 0:
        pytest.skip(f"the Debian test images cannot be built here: {done.stderr.strip()[-300:]}")
    return [f"localhost/shoal/{name}:bookworm" for name in names]


def pod_manifest(name: str, containers: list[Obj], *, restart_policy: str = "Always", grace: int = 2,
                 namespace: str = "default") -> Obj:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": containers, "restartPolicy": restart_policy,
                 "terminationGracePeriodSeconds": grace},
    }


async def create_bound(client: ApiClient, pod: Obj, node: str) -> Obj:
    created = await client.create(pod)
    return await client.bind(created["metadata"]["name"], created["metadata"]["namespace"], node)


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 30.0, interval: float = 0.1,
                     what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except NotFound as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


async def pod_where(client: ApiClient, name: str, predicate: Callable[[Obj], bool],
                    namespace: str = "default") -> Obj | None:
    pod = await client.get("Pod", name, namespace)
    return pod if predicate(pod) else None


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase"))


def cstatus(pod: Obj, index: int = 0) -> Obj:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return statuses[index] if len(statuses) > index else {}


def waiting_reason(pod: Obj) -> str | None:
    reason = (cstatus(pod).get("state") or {}).get("waiting", {}).get("reason")
    return str(reason) if reason else None


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def started(agent: KubeletAgent) -> Callable[[], bool]:
    return lambda: agent.started.is_set()
