"""The rest of the container spec end to end on real Podman (issue 13 item 6): each container prints what
it sees (``id``, capabilities, a write to a read-only root, /etc/hosts, its host name, ``ps`` in a shared PID
namespace) and the test reads its logs; termination messages, lifecycle hooks, runAsNonRoot and pull policy
show in the pod's status."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.api.server import ApiActor
from agents.kubelet.podman_service import PodmanService
from protocol.objects import Obj
from runtime.client import ApiClient
from tests.agents.kubelet_helpers import create_bound, cstatus, eventually, phase, pod_manifest, pod_where
from tests.agents.test_kubelet_e2e import sh
from tests.agents.test_kubelet_volumes_e2e import logs, logs_with, node, start_kubelet, unmount_volumes
from tests.agents.test_kubelet_volumes_e2e import value as raw_value
from tests.conftest import ActorRunner

pytestmark = [pytest.mark.podman, pytest.mark.slow]


def value(lines: list[str], key: str) -> str:
    return raw_value(lines, key).strip()  # a tty ends lines with \r\n
__all__ = ["node", "unmount_volumes"]  # fixtures

SEE = """
echo id=$(id)
echo capbnd=$(grep CapBnd /proc/self/status | cut -f2)
echo capeff=$(grep CapEff /proc/self/status | cut -f2)
echo nonewprivs=$(grep NoNewPrivs /proc/self/status | cut -f2)
touch /rootfile 2>/dev/null && echo rootfs=writable || echo rootfs=read-only
echo hostname=$(hostname)
echo alias=$(grep foo.local /etc/hosts | tr -s ' \\t' ' ')
echo fqdn=$(grep -c web.sub.default.svc.cluster.local /etc/hosts)
echo pwd=$(pwd)
echo shm=$(cat /proc/sys/kernel/shm_rmid_forced)
for i in $(seq 100); do ps | grep -q '[s]leep 1001' && break; sleep 0.2; done
echo sleeper=$(ps | grep -c '[s]leep 1001')
echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' ')
[ -t 0 ] && echo tty=yes || echo tty=no
echo done-see
sleep 1000
"""


async def test_security_context_hosts_and_shared_pid_namespace(runner: ActorRunner, api: ApiActor,
                                                               client: ApiClient, podman_service: PodmanService,
                                                               node: str, tmp_path: Path) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    see = sh("see", SEE, workingDir="/etc", tty=True, stdin=True,
             securityContext={"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                              "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}})
    sleeper = sh("sleeper", "sleep 1001")
    manifest = pod_manifest("secure", [see, sleeper])
    manifest["spec"].update(
        hostname="web", subdomain="sub", shareProcessNamespace=True,
        hostAliases=[{"ip": "198.51.100.7", "hostnames": ["foo.local", "bar.local"]}],
        securityContext={"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000],
                         "sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}]})
    await create_bound(client, manifest, node)
    lines = await logs_with(client, "secure", "see", "done-see")
    ident = value(lines, "id")
    assert ident.startswith("uid=1000(1000) gid=3000(3000)") and "2000" in ident and "4000" in ident, ident
    assert value(lines, "capbnd") == "0000000000000400"  # only CAP_NET_BIND_SERVICE (bit 10) left
    assert value(lines, "nonewprivs") == "1"
    assert value(lines, "rootfs") == "read-only"
    assert value(lines, "hostname") == "web"
    assert value(lines, "alias") == "198.51.100.7 foo.local"
    assert value(lines, "fqdn") == "1"
    assert value(lines, "pwd") == "/etc"
    assert value(lines, "shm") == "1"
    assert value(lines, "pid1").startswith("/catatonit")  # the infra container's init: one PID namespace
    assert value(lines, "sleeper") == "1"  # the other container's process, seen through the shared namespace
    assert value(lines, "tty") == "yes"


async def test_run_as_non_root_refuses_a_root_image(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                    podman_service: PodmanService, node: str,
                                                    tmp_path: Path) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    root = pod_manifest("rooted", [sh("c", "sleep 1000", securityContext={"runAsNonRoot": True})])
    await create_bound(client, root, node)
    pod = await eventually(lambda: pod_where(client, "rooted", lambda p: _waiting(p) == "CreateContainerConfigError"),
                           timeout=60, what="CreateContainerConfigError")
    assert "image will run as root" in cstatus(pod)["state"]["waiting"]["message"]
    fine = pod_manifest("unrooted", [sh("c", "echo id=$(id -u); sleep 1000")])
    fine["spec"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1234}
    await create_bound(client, fine, node)
    assert value(await logs_with(client, "unrooted", "c", "id="), "id") == "1234"


def _waiting(pod: Obj) -> str | None:
    return (cstatus(pod).get("state") or {}).get("waiting", {}).get("reason")


def _terminated(pod: Obj, index: int = 0) -> Obj:
    return (cstatus(pod, index).get("state") or {}).get("terminated") or {}


async def test_termination_messages(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                    podman_service: PodmanService, node: str, tmp_path: Path) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    manifest = pod_manifest("ending", [
        sh("file", "echo 'out of cheese' > /dev/termination-log; exit 1"),
        sh("custom", "echo custom-path > /tmp/why; exit 0", terminationMessagePath="/tmp/why"),
        sh("fallback", "echo first; echo oops-from-logs; exit 2", terminationMessagePolicy="FallbackToLogsOnError"),
    ], restart_policy="Never")
    await create_bound(client, manifest, node)
    pod = await eventually(lambda: pod_where(client, "ending", lambda p: phase(p) == "Failed"), timeout=60,
                           what="ending Failed")
    by_name = {c["name"]: (c["state"].get("terminated") or {}) for c in pod["status"]["containerStatuses"]}
    assert by_name["file"]["message"].strip() == "out of cheese" and by_name["file"]["exitCode"] == 1
    assert by_name["custom"]["message"].strip() == "custom-path"
    assert by_name["fallback"]["message"] == "first\noops-from-logs"


async def test_lifecycle_hooks(runner: ActorRunner, api: ApiActor, client: ApiClient,
                               podman_service: PodmanService, node: str, tmp_path: Path) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    host = tmp_path / "host"
    host.mkdir()
    main = sh("main", "trap 'echo term >> /h/order; exit 0' TERM; echo seen=$(cat /h/poststart); "
                      "while true; do sleep 0.2; done",
              volumeMounts=[{"name": "h", "mountPath": "/h"}],
              lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "echo started > /h/poststart"]}},
                         "preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /h/order"]}}})
    manifest = pod_manifest("hooked", [main], grace=10)
    manifest["spec"]["volumes"] = [{"name": "h", "hostPath": {"path": str(host), "type": "Directory"}}]
    await create_bound(client, manifest, node)
    await eventually(lambda: pod_where(client, "hooked", lambda p: phase(p) == "Running"), timeout=60,
                     what="hooked Running")
    assert (host / "poststart").read_text().strip() == "started"
    await client.delete("pods", "hooked")

    async def gone() -> bool:
        try:
            await client.get("Pod", "hooked")
        except Exception:
            return True
        return False
    await eventually(gone, timeout=60, what="hooked deleted")
    assert (host / "order").read_text().split() == ["prestop", "term"]  # preStop ran before the stop signal

    failing = sh("c", "sleep 1000", lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "exit 3"]}}})
    await create_bound(client, pod_manifest("badhook", [failing]), node)
    pod = await eventually(lambda: pod_where(client, "badhook", lambda p: cstatus(p).get("restartCount", 0) >= 1),
                           timeout=60, what="badhook killed and restarted")
    assert cstatus(pod)["lastState"]["terminated"]["exitCode"] != 0


async def test_image_pull_policy(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                 podman_service: PodmanService, node: str, tmp_path: Path) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    absent = {"name": "c", "image": "localhost/shoal/absent:1", "imagePullPolicy": "Never"}
    await create_bound(client, pod_manifest("never", [absent]), node)
    pod = await eventually(lambda: pod_where(client, "never", lambda p: _waiting(p) == "ErrImageNeverPull"),
                           timeout=60, what="ErrImageNeverPull")
    assert "pull policy of Never" in cstatus(pod)["state"]["waiting"]["message"]
    always = sh("c", "echo ran; sleep 1000", imagePullPolicy="Always")  # localhost/: local by definition
    await create_bound(client, pod_manifest("always", [always]), node)
    assert "ran" in await logs_with(client, "always", "c", "ran")
    assert await logs(client, "never", "c") == []
