"""The kubelet's settings: one frozen dataclass, filled from command-line flags or by tests and hollow nodes.

Timings follow Kubernetes' defaults (10 s node status and lease renewal, 40 s lease duration, crash-loop
back-off from 10 s doubling to 5 min, reset after 10 min of running). Tests shorten the back-off with
``backoff_base``/``backoff_max`` (e.g. 1 s / 4 s) so that a crash loop shows within seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

KUBELET_VERSION = "shoal-0.1"
DEFAULT_MAX_PODS = 110


@dataclass(frozen=True)
class KubeletConfig:
    node_name: str
    address: str = "127.0.0.1"
    """The node's InternalIP; hostPorts are published on it unless a port names its own hostIP."""
    state_dir: Path = Path("/var/lib/shoal/kubelet")
    service_links: bool = True
    """Give containers Kubernetes' ``<SERVICE>_SERVICE_HOST/PORT`` variables (hollow nodes skip them)."""
    service_gateway: str | None = None
    """Where containers reach the node's proxy (the Podman bridge gateway); node ports are served there."""
    pod_network: str = "loopback"
    """``bridge``: one Podman bridge network for the node with its podCIDR (see ``podnetwork``);
    ``loopback``: the fallback, pod addresses are node loopback addresses (pods cannot reach each other)."""
    pod_cidr: str | None = "127.88.0.0/16"
    """The node's pod network. Each pod gets an address in it. In bridge mode None means "as node IPAM
    assigns it" (the Node's ``spec.podCIDR``). In loopback mode each container port is published on the
    pod's address; give each node of a machine its own range."""
    node_routes: bool = False
    """In bridge mode: keep a route to every other node's podCIDR via its address (see ``noderoutes``)."""
    cluster_name: str = "shoal"
    """Names and labels this kubelet's Podman network, so two clusters on one machine never share one."""
    labels: dict[str, str] = field(default_factory=dict)
    """Extra node labels (the well-known hostname/os/arch labels are always set)."""
    cpu: str | None = None
    """Capacity overrides (quantities); None measures the host (os.cpu_count, /proc/meminfo)."""
    memory: str | None = None
    max_pods: int = DEFAULT_MAX_PODS
    lease_duration: int = 40
    lease_renew_interval: float = 10.0
    node_status_interval: float = 10.0
    phase: float = 0.0
    """Where in each period this kubelet's periodic work falls, as a fraction of the period (0 <= phase < 1):
    the first lease renewal, Node status write, runtime relist and pod resync wait that fraction of their
    intervals. A hollow process gives its nodes phases spread over [0, 1), so their periodic work is spread as
    a fleet of independently started kubelets' is, not done by all of them at once."""
    backoff_base: float = 10.0
    backoff_max: float = 300.0
    backoff_reset: float = 600.0
    """A container that ran this long before exiting restarts without back-off (its history is reset)."""
    relist_interval: float = 1.0
    """How often the runtime is listed to notice containers that exited (Kubernetes' PLEG period)."""
    relist_share: float = 0.2
    """The most of its time the relist keeps the runtime listing: when a whole listing takes long (many pods
    on a loaded Podman: 0.6 s at 40 pods measured), the next waits longer than ``relist_interval``, so pod
    starts are not queued behind back-to-back listings (``runtime_cache.relist_pause``)."""
    workers: int = 8
    """Pods reconciled concurrently (one pod is never reconciled by two workers at once)."""
    measure_host: bool = True
    """Compute Memory/Disk/PID pressure from this host; hollow nodes report no pressure."""
    record_events: bool = True
    keep_attempts: int = 2
    """Exited attempts kept per container (the latest serves ``logs --previous``); older ones are removed."""
    volume_refresh: float = 20.0
    """ConfigMaps/Secrets used by pods are re-read at most this often; mounted files follow within ~2x."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.phase < 1.0:
            raise ValueError(f"KubeletConfig.phase is a fraction of a period: 0 <= phase < 1, got {self.phase}")
