"""Container lifecycle hooks (``lifecycle.postStart`` / ``preStop``) and the termination-message file.

A hook handler is ``exec`` (run in the container through the runtime), ``httpGet`` (a GET to the pod IP, or
``host``, at ``port``; 2xx/3xx succeeds, as a probe) or ``sleep`` (the kubelet waits). ``run_hook`` returns
the failure text (None on success); the executor records ``FailedPostStartHook`` / ``FailedPreStopHook``
Events, kills a container whose postStart failed (restarted per the restart policy, as Kubernetes), and
gives preStop at most the grace period before the stop signal (the stop gets what is left, at least 2 s
as Kubernetes' minimum kill grace).

``termination_log_path`` is where a container attempt's terminationMessagePath lives on the node:
``<state>/pods/<uid>/containers/<name>/<attempt>`` (as Kubernetes' kubelet), removed with the pod's directory.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from agents.kubelet.cri import ContainerRuntime, ContainerRuntimeError
from agents.kubelet.probes import NetworkProber, ProbeSpec, ProbeTarget
from protocol.objects import Obj

MIN_KILL_GRACE = 2.0


def handler_of(spec: Obj | None, hook: str) -> Obj | None:
    lifecycle = (spec or {}).get("lifecycle")
    handler = lifecycle.get(hook) if isinstance(lifecycle, dict) else None
    return handler if isinstance(handler, dict) else None


async def run_hook(runtime: ContainerRuntime, handler: Obj, *, container_id: str, container: Obj,
                   pod_ip: str | None, node_address: str, timeout: float) -> str | None:
    """Run one lifecycle handler; the failure's text, or None when it succeeded."""
    timeout = max(timeout, 0.5)
    sleep = handler.get("sleep")
    if isinstance(sleep, dict):
        await asyncio.sleep(min(float(sleep.get("seconds") or 0), timeout))
        return None
    exec_ = handler.get("exec")
    if isinstance(exec_, dict):
        command = [str(x) for x in exec_.get("command") or []]
        try:
            code, output = await runtime.exec_in_container(container_id, command, timeout)
        except ContainerRuntimeError as exc:
            return f"Exec lifecycle hook ({command}) for Container {container.get('name')!r} failed - error: {exc}"
        if code != 0:
            return (f"Exec lifecycle hook ({command}) for Container {container.get('name')!r} failed - error: "
                    f"command {' '.join(command)!r} exited with {code}: {output.strip()[-200:]}")
        return None
    http = handler.get("httpGet")
    if isinstance(http, dict):
        spec = ProbeSpec("liveness", {"httpGet": http}, timeout=timeout)
        target = ProbeTarget(container_id, container, pod_ip, node_address)
        if await NetworkProber(runtime).check(spec, target):
            return None
        return (f"HTTP lifecycle hook ({http.get('path') or '/'}) for Container {container.get('name')!r} failed - "
                f"error: GET port {http.get('port')} did not answer 2xx/3xx")
    return f"lifecycle handler {sorted(handler)} is not supported"


def termination_log_path(state_dir: Path | str, uid: str, name: str, attempt: int) -> str:
    return os.path.join(str(state_dir), "pods", uid, "containers", name, str(attempt))


def make_termination_log(path: str) -> None:
    """An empty, world-writable file (any container user may write its message)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb"):
        pass
    os.chmod(path, 0o666)
