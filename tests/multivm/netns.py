"""Network namespaces as "VMs" for the multi-VM tests: one bridge namespace, a namespace per VM joined to
it by a veth pair, and a client namespace that the test process's main thread enters (``setns``).

Nothing is configured in the root namespace: on these machines the root namespace's own network may
already use 192.0.2.0/24 (here eth0 is 192.0.2.2 with its gateway at 192.0.2.1), so a root-namespace
bridge on that range would collide with the real one. Every address below lives only inside the
namespaces this module creates, and ``Network.destroy`` removes them (also after a failure).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
SUBNET = "192.0.2"
CLIENT_HOST = 100


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def netns_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "multi-VM tests need root (network namespaces, veth pairs)"
    if shutil.which("ip") is None:
        return "multi-VM tests need iproute2 (`ip`)"
    probe = f"shoalmv-probe-{os.getpid()}"
    done = ip("netns", "add", probe, check=False)
    if done.returncode != 0:
        return f"`ip netns add` is unavailable here: {done.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


@dataclass
class Network:
    """``vms`` namespaces at 192.0.2.1..N/24 on a bridge, plus a client namespace at 192.0.2.100."""

    vms: int = 3
    tag: str = field(default_factory=lambda: f"{os.getpid() % 100000}")
    created: list[str] = field(default_factory=list)
    _root_fd: int | None = None

    @property
    def bridge_ns(self) -> str:
        return f"shoalmv{self.tag}-br"

    def vm_ns(self, i: int) -> str:
        return f"shoalmv{self.tag}-vm{i}"

    @property
    def client_ns(self) -> str:
        return f"shoalmv{self.tag}-client"

    @staticmethod
    def address(i: int) -> str:
        return f"{SUBNET}.{i}"

    def create(self) -> None:
        ip("netns", "add", self.bridge_ns)
        self.created.append(self.bridge_ns)
        ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        for i, ns in [*((i, self.vm_ns(i)) for i in range(1, self.vms + 1)), (CLIENT_HOST, self.client_ns)]:
            self._plug(i, ns)
            self.created.append(ns)

    def _plug(self, i: int, ns: str) -> None:
        ip("netns", "add", ns)
        ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", f"p{i}", "netns", self.bridge_ns)
        ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", self.bridge_ns, "link", "set", f"p{i}", "master", "br0")
        ip("-n", self.bridge_ns, "link", "set", f"p{i}", "up")

    def reset_vm(self, i: int) -> None:
        """A fresh network stack for VM ``i``, as after a reboot: no addresses, routes or firewall rules of
        its previous life (its namespace is made again, same address, same bridge port)."""
        ip("netns", "del", self.vm_ns(i))
        # the veth pair outlives the name while a dying process still holds the namespace: cut it now
        ip("-n", self.bridge_ns, "link", "del", f"p{i}", check=False)
        self._plug(i, self.vm_ns(i))

    def cut(self, i: int) -> None:
        """Unplug VM ``i``: its port on the bridge goes down (its own configuration stays)."""
        ip("-n", self.bridge_ns, "link", "set", f"p{i}", "down")

    def heal(self, i: int) -> None:
        ip("-n", self.bridge_ns, "link", "set", f"p{i}", "up")

    def exec_args(self, i: int, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.vm_ns(i), *argv]

    def enter_client(self) -> None:
        """Move this thread (the test's main thread, where asyncio runs) into the client namespace."""
        self._root_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        _setns(f"/run/netns/{self.client_ns}")

    def leave_client(self) -> None:
        if self._root_fd is None:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(self._root_fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back to the root network namespace failed")
        os.close(self._root_fd)
        self._root_fd = None

    def destroy(self) -> None:
        with contextlib.suppress(OSError):
            self.leave_client()
        for ns in reversed(self.created):
            ip("netns", "del", ns, check=False)
        self.created.clear()
