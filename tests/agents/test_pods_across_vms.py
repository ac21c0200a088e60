"""Pods on two "VMs" (two network namespaces joined by a veth pair, 198.51.100.1 and .2) reach each other
by podIP through the kubelet's own parts: each VM has its own Podman service (started inside its
namespace with ``nsenter --net``, so netavark makes the bridge there), the node's bridge network with its
podCIDR (``PodmanRuntime.ensure_network``), and ``NodeRoutes`` adding the route to the other VM's pods via
its address. Everything is removed afterwards, pass or fail."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import structlog

from agents.kubelet.cri import ContainerConfig, SandboxConfig
from agents.kubelet.images import BUSYBOX_IMAGE
from agents.kubelet.noderoutes import NodeRoutes
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import PodmanService
from agents.kubelet.podnetwork import NetworkSpec, network_spec
from protocol.objects import Obj

pytestmark = [pytest.mark.podman, pytest.mark.slow]


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


class StaticNodes:
    """The Node informer's surface that NodeRoutes uses, over a fixed list."""

    def __init__(self, nodes: list[Obj]) -> None:
        self.nodes = nodes
        self.synced = asyncio.Event()
        self.synced.set()

    def items(self) -> list[Obj]:
        return self.nodes

    def add_handler(self, handler: Any) -> None:
        pass


class Vm:
    def __init__(self, ns: str, address: str, node: str, cidr: str, root: Path) -> None:
        self.ns, self.address, self.node, self.cidr = ns, address, node, cidr
        self.socket = root / f"{ns}.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.runtime: PodmanRuntime | None = None
        self.spec: NetworkSpec = network_spec("vmtest", node, cidr)

    def node_obj(self) -> Obj:
        return {"metadata": {"name": self.node}, "spec": {"podCIDR": self.cidr, "podCIDRs": [self.cidr]},
                "status": {"addresses": [{"type": "InternalIP", "address": self.address}]}}


@pytest_asyncio.fixture
async def two_vms(podman_service: PodmanService, tmp_path: Path) -> AsyncIterator[tuple[Vm, Vm]]:
    if os.geteuid() != 0 or shutil.which("nsenter") is None:
        pytest.skip("needs root and nsenter")
    tag = uuid.uuid4().hex[:6]
    octet = 100 + int(tag[:2], 16) % 148
    vms = (Vm(f"shoalvm{tag}a", "198.51.100.1", f"vm-a-{tag}", f"198.18.{octet}.0/24", tmp_path),
           Vm(f"shoalvm{tag}b", "198.51.100.2", f"vm-b-{tag}", f"198.18.{octet + 1}.0/24", tmp_path))
    try:
        for vm in vms:
            ip("netns", "add", vm.ns)
        ip("link", "add", "eth0", "netns", vms[0].ns, "type", "veth", "peer", "name", "eth0", "netns", vms[1].ns)
        for vm in vms:
            ip("-n", vm.ns, "addr", "add", f"{vm.address}/24", "dev", "eth0")
            ip("-n", vm.ns, "link", "set", "eth0", "up")
            ip("-n", vm.ns, "link", "set", "lo", "up")
            vm.proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{vm.ns}", "podman", "system", "service",
                                        "--time=0", f"unix://{vm.socket}"], env=podman_service.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for vm in vms:
            for _ in range(100):
                if vm.socket.exists():
                    break
                await asyncio.sleep(0.1)
            vm.runtime = PodmanRuntime(f"unix://{vm.socket}")
        yield vms
    finally:
        for vm in vms:
            if vm.runtime is not None:
                for sandbox in await vm.runtime.list_sandboxes(vm.node):
                    await vm.runtime.remove_sandbox(sandbox.id)
                for c in await vm.runtime.list_containers(vm.node):
                    await vm.runtime.remove_container(c.id)
                await vm.runtime.remove_network(vm.spec.name)
                await vm.runtime.close()
            if vm.proc is not None:
                vm.proc.terminate()
                vm.proc.wait(10)
            ip("netns", "del", vm.ns, check=False)


async def run_pod(vm: Vm, name: str, script: str) -> tuple[str, str]:
    """A sandbox on the VM's pod network at .5, with one busybox container; (container id, pod IP)."""
    assert vm.runtime is not None
    await vm.runtime.ensure_network(vm.spec)
    vm.runtime.use_network(vm.spec)
    pod_ip = vm.cidr.rsplit(".", 1)[0] + ".5"
    sandbox = SandboxConfig(pod_uid=uuid.uuid4().hex, namespace="default", name=name, node_name=vm.node,
                            pod_ip=pod_ip)
    sandbox_id = await vm.runtime.create_sandbox(sandbox)
    container = ContainerConfig(name="c", image=BUSYBOX_IMAGE, command=("sh", "-c", script))
    cid = await vm.runtime.create_container(sandbox_id, sandbox, container, 0)
    await vm.runtime.start_container(cid)
    return cid, pod_ip


async def test_a_pod_on_one_vm_reaches_a_pod_on_another_by_pod_ip(two_vms: tuple[Vm, Vm]) -> None:
    a, b = two_vms
    assert a.runtime is not None
    client, _ = await run_pod(a, "client", "exec sleep 300")
    _, server_ip = await run_pod(b, "server", "echo hello-from-vm-b > /i.html; exec httpd -f -p 8080 -h /")
    fetch = ["sh", "-c", f"printf 'GET /i.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {server_ip} 8080"]
    _, before = await a.runtime.exec_in_container(client, fetch, 10)
    assert "hello-from-vm-b" not in before  # no route to the other VM's pods yet

    nodes = StaticNodes([a.node_obj(), b.node_obj()])
    log = structlog.get_logger("test")
    for vm in (a, b):  # what each VM's kubelet does from the Node objects
        routes = NodeRoutes(vm.node, nodes, log=log, ip_command=("ip", "-n", vm.ns))
        done = await routes.sync()
        assert len(done.replace) == 1
    assert f"{b.cidr} via {b.address}" in ip("-n", a.ns, "route", "show", "proto", "90").stdout

    for _ in range(20):
        _, out = await a.runtime.exec_in_container(client, fetch, 10)
        if "hello-from-vm-b" in out:
            break
        await asyncio.sleep(0.5)
    assert "hello-from-vm-b" in out, out  # pod on VM a -> pod on VM b, by podIP, routed via VM b
