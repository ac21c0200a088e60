"""The node's pod network: one Podman bridge network per node, with the Node's ``spec.podCIDR``.

Two modes (``KubeletConfig.pod_network``):
- ``bridge``: the kubelet waits for node IPAM (the controller manager's ``nodeipam``) to give its Node a
  podCIDR (or uses ``--pod-cidr``), creates the bridge network ``shoal-<cluster>-<node>`` with that subnet
  and gateway ``.1`` (netavark; Podman's own DNS off: cluster DNS serves the gateway), and puts every pod's
  infra container on it at the address the kubelet assigned. Pods reach each other at
  ``podIP:containerPort``; the node reaches them through the bridge; hostPorts are published as before.
- ``loopback``: the fallback where bridges cannot be made. Pod addresses are node loopback addresses and
  each container port is published there (pods cannot reach each other this way).

The mode, the network and its subnet are reported in the Node's ``NetworkUnavailable`` condition; until the
network exists the Node is not Ready ("container runtime network not ready", as Kubernetes' kubelet says
while its CNI network is not ready), so nothing is scheduled onto a node whose pods could not start. Two
kubelets on one machine share Podman: networks are labelled with cluster and node, named per cluster and
node, and a kubelet only ever touches its own. A kubelet that stops with no sandbox left removes its
network (with sandboxes left, the next kubelet adopts both).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from agents.kubelet.cri import ContainerRuntimeError
from protocol.errors import ShoalError
from protocol.objects import Obj
from runtime.client import ApiClient
from runtime.host_subnets import conflicting

LABEL_CLUSTER = "io.shoal.cluster"
MODES = ("bridge", "loopback")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


class PodNetworkError(Exception):
    """The node's pod network cannot be set up (e.g. a network of that name with another subnet)."""


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """A Podman bridge network as the kubelet wants it."""

    name: str
    subnet: str
    gateway: str
    labels: dict[str, str]


@runtime_checkable
class PodNetworkRuntime(Protocol):
    """What a runtime that can place pods on a node network offers besides ``ContainerRuntime``."""

    async def ensure_network(self, spec: NetworkSpec) -> None:
        """Create the network, or accept an existing one with the same subnet; PodNetworkError otherwise."""

    async def remove_network(self, name: str) -> None:
        """Remove a network labelled as Shoal's (absent: nothing to do)."""

    def use_network(self, spec: NetworkSpec | None) -> None:
        """Put sandboxes created from now on onto this network (None: the runtime's default)."""


def network_name(cluster: str, node: str) -> str:
    return _UNSAFE.sub("-", f"shoal-{cluster}-{node}")[:200]


def network_spec(cluster: str, node: str, cidr: str) -> NetworkSpec:
    """The bridge network for ``cidr``; its gateway (the node's address on it) is the first address."""
    try:
        net = ipaddress.IPv4Network(cidr)
    except ValueError as exc:
        raise PodNetworkError(f"pod CIDR {cidr!r} is not an IPv4 network") from exc
    if net.prefixlen > 29:
        raise PodNetworkError(f"pod CIDR {cidr} is too small for a node")
    return NetworkSpec(network_name(cluster, node), str(net), str(net.network_address + 1),
                       {"io.shoal.managed": "true", "io.shoal.node": node, LABEL_CLUSTER: cluster})


def network_condition(mode: str, spec: NetworkSpec | None, cidr: str | None, error: str | None = None) -> Obj:
    """The Node condition reporting the pod network (``False`` means the network is available)."""
    if mode == "loopback":
        return {"type": "NetworkUnavailable", "status": "False", "reason": "LoopbackPodNetwork",
                "message": f"pod addresses are node loopback addresses in {cidr} (pods do not reach each other)"}
    if spec is None and error is not None:
        return {"type": "NetworkUnavailable", "status": "True", "reason": "NetworkSetupFailed", "message": error}
    if spec is None:
        return {"type": "NetworkUnavailable", "status": "True", "reason": "NoPodCIDR",
                "message": "waiting for node IPAM to assign spec.podCIDR"}
    return {"type": "NetworkUnavailable", "status": "False", "reason": "BridgePodNetwork",
            "message": f"bridge network {spec.name} {spec.subnet}, gateway {spec.gateway}"}


def node_pod_cidr(node: Obj) -> str | None:
    spec = node.get("spec") or {}
    cidrs = [str(c) for c in spec.get("podCIDRs") or [] if c] or ([str(spec["podCIDR"])] if spec.get("podCIDR") else [])
    return cidrs[0] if cidrs else None


def with_host_conflicts(error: str, subnet: str) -> str:
    """The runtime's error, plus which host routes overlap the subnet and what to do about them."""
    clash = conflicting(subnet)
    if not clash:
        return error
    return (f"{error} (the host already routes {', '.join(clash)}: another cluster or network uses this "
            "range; stop it, or give this cluster another --cluster-cidr)")


class PodNetwork:
    """Sets the node's pod network up once the Node has a podCIDR; ``ready`` is set with ``cidr``."""

    def __init__(self, client: ApiClient, runtime: Any, *, mode: str, cluster: str, node: str,
                 cidr: str | None, log: Any, poll: float = 0.5) -> None:
        if mode not in MODES:
            raise PodNetworkError(f"unknown pod network mode {mode!r}; known: {', '.join(MODES)}")
        if mode == "bridge" and not isinstance(runtime, PodNetworkRuntime):
            raise PodNetworkError(f"the {type(runtime).__name__} runtime cannot make bridge networks; "
                                  "use --pod-network loopback")
        self.client = client
        self.runtime = runtime
        self.mode = mode
        self.cluster = cluster
        self.node = node
        self.cidr = cidr if mode == "loopback" else None
        self._wanted = cidr
        self.spec: NetworkSpec | None = None
        self.error: str | None = None  # why the network could not be made (last attempt)
        self.on_change: Callable[[], None] = lambda: None  # told when readiness or the error changes
        self.log = log
        self.poll = poll
        self.ready = asyncio.Event()
        if mode == "loopback":
            self.ready.set()

    def condition(self) -> Obj:
        return network_condition(self.mode, self.spec, self.cidr, self.error)

    def runtime_status(self) -> tuple[bool, str]:
        """Whether pods can run here as far as the network goes, and if not why: the Node's Ready condition
        says it as Kubernetes' kubelet does when the runtime's network is not ready (no pod lands on it)."""
        if self.ready.is_set():
            return True, ""
        why = self.error or "waiting for node IPAM to assign spec.podCIDR"
        return False, ("container runtime network not ready: NetworkReady=false "
                       f"reason:NetworkPluginNotReady message:{why}")

    async def run(self) -> None:
        """Wait for a podCIDR and make the network (retrying); returns once it is ready."""
        if self.ready.is_set():
            return
        delay = self.poll
        while True:
            try:
                cidr = self._wanted or await self._assigned()
                if cidr is not None:
                    spec = network_spec(self.cluster, self.node, cidr)
                    try:
                        await self.runtime.ensure_network(spec)
                    except PodNetworkError as exc:
                        # `ip route` runs in a thread: the kubelet's loop keeps serving meanwhile
                        raise PodNetworkError(await asyncio.to_thread(with_host_conflicts, str(exc),
                                                                      spec.subnet)) from exc
                    self.runtime.use_network(spec)
                    self.spec, self.cidr = spec, cidr
                    self.log.info("pod network ready", network=spec.name, subnet=spec.subnet, gateway=spec.gateway)
                    self.ready.set()
                    self.on_change()
                    return
            except (ShoalError, PodNetworkError, ContainerRuntimeError) as exc:
                if self.error != str(exc):
                    self.error = str(exc)
                    self.on_change()
                self.log.warning("pod network not ready; retrying", error=str(exc), retry_in=delay)
                delay = min(delay * 2, 10.0)
            await asyncio.sleep(delay)

    async def release(self) -> bool:
        """At shutdown: remove the network if no sandbox of this node is left on it (else pods keep
        running and the next kubelet adopts them with the network). True when no sandbox of this node is
        left (and so nothing uses what the node set up for pods)."""
        name = self.spec.name if self.spec is not None else None
        try:
            if await self.runtime.list_sandboxes(self.node):
                return False
            if name is not None:
                await self.runtime.remove_network(name)
                self.log.info("pod network removed", network=name)
            return True
        except (ContainerRuntimeError, PodNetworkError) as exc:
            self.log.warning("pod network not removed", network=name, error=str(exc))
        return False

    async def _assigned(self) -> str | None:
        return node_pod_cidr(await self.client.get("Node", self.node))
