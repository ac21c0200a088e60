"""``HollowNodes``: one actor running N kubelets (``KubeletAgent``) with the fake runtime in one process.

What is shared and what is not:
- shared: the NATS connection, the ``FakeRuntime`` (it keys everything by node), the probe scheduler (one
  heap for every probe of every hollow node; network probes pass, exec probes ask the fake runtime);
- per node, as on a real node: the Node object, its Lease, its status heartbeats, a pods informer with a
  server-side ``spec.nodeName`` field selector (so each node receives only its own pods), its work queue
  and its logs subscription. The API's watch cache indexes node-filtered pod watchers by node, so N such
  watches cost the API one dictionary lookup per pod change, not N selector evaluations.

Each node has its own state directory (``<state_root>/<node>``: pod volume files, termination logs) under one
fresh per-process root, removed on close (by a detached ``rm -rf``, so that a stop does not wait for it). They
were once all ``/nonexistent/hollow``, shared by every node of every hollow process and never removed: each
node's resync (every 60 s) then read the owner file of every pod directory ever made there, N nodes x all pods,
on the default thread pool, where container starts wait for their volumes to be written. Past the first resync
the pool never caught up: sandboxes were made, containers never (docs/BENCHMARKS.md, "A finding on the way").

Periodic work is staggered: node ``i`` of ``N`` has the phase ``i / N`` (``KubeletConfig.phase``), so its
lease renewals, Node status writes, runtime relists and pod resyncs each fall ``i / N`` of the way into their
own intervals. Each kind of work is spread evenly over its interval instead of arriving in bursts. Status writes
were once staggered over the lease's 10 s only, and resyncs not at all. Every 60 s, all the nodes' 5,000 status
writes came within 10 s, and every pod of a process was reconciled within a few seconds. That stalled
binds for 5-15 s a minute at 150,000 pods (docs/BENCHMARKS.md, "Periodic work in phase").
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.fake_runtime import FakeRuntime
from agents.kubelet.node import StaticMetrics
from agents.kubelet.probes import AlwaysPassProber, ProbeScheduler
from agents.kubelet.volumes import unmount_all
from runtime.actor import ActorContext
from runtime.event_correlator import EventCorrelator
from runtime.logs import get_logger


@dataclass(frozen=True)
class HollowSettings:
    nodes: int
    prefix: str = "hollow-"
    cpu: str = "8"
    memory: str = "32Gi"
    max_pods: int = 110
    lease_interval: float = 10.0
    status_interval: float = 10.0
    relist_interval: float = 5.0
    workers: int = 2
    record_events: bool = False
    labels: tuple[tuple[str, str], ...] = (("shoal.io/hollow", "true"),)
    state_parent: Path | None = None
    """Where the process's own state root is made (default: the system's temporary directory)."""


def remove_detached(root: Path) -> None:
    """Unmount what is mounted under ``root``, then delete it in a process of its own: a stop does not wait
    for the files of every pod (~4 each: 80,000 at 20,000 pods took longer than the 10 s a SIGTERM is given)."""
    unmount_all(root)
    subprocess.Popen(["rm", "-rf", "--", str(root)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)


def hollow_address(i: int) -> str:
    """Distinct, unroutable-by-design node addresses (10.64.0.0/10) for hollow node ``i``."""
    return f"10.{64 + (i >> 16) % 64}.{(i >> 8) & 255}.{i & 255}"


class HollowNodes:
    name = "hollow"

    def __init__(self, settings: HollowSettings) -> None:
        self.settings = settings
        self.runtime = FakeRuntime()
        self.probes = ProbeScheduler(AlwaysPassProber(self.runtime))
        self.events = EventCorrelator()
        """One correlator for the process's nodes, as the probes are one scheduler: a kubelet's recorder keeps
        bounded caches (4,096 entries each) that a few pods never fill, so 2,500 nodes of 30 pods each kept
        ~500,000 entries (~290 MiB and a fifth more garbage collection at 150,000 pods); keyed by source host,
        the nodes' events never meet in it."""
        self.agents: list[KubeletAgent] = []
        self.started_at: float | None = None
        self.ready_after: float | None = None
        self.state_root: Path | None = None
        self.log: Any = get_logger(actor=self.name)
        """This process's own state directory (made at start, removed at close); one subdirectory per node."""

    def node_name(self, i: int) -> str:
        return f"{self.settings.prefix}{i}"

    async def start(self, ctx: ActorContext) -> None:
        s = self.settings
        started = time.monotonic()
        self.started_at = started
        self.log = ctx.log
        ctx.supervisor.spawn("probes", self.probes.run)
        metrics = StaticMetrics(s.cpu, s.memory)
        root = self.state_root = Path(tempfile.mkdtemp(prefix="shoal-hollow-", dir=s.state_parent))
        for i in range(s.nodes):
            node = self.node_name(i)
            config = KubeletConfig(
                node_name=node, address=hollow_address(i), state_dir=root / node,
                labels=dict(s.labels), cpu=s.cpu, memory=s.memory, max_pods=s.max_pods,
                lease_renew_interval=s.lease_interval, node_status_interval=s.status_interval,
                phase=i / max(1, s.nodes), relist_interval=s.relist_interval,
                workers=s.workers, measure_host=False, record_events=s.record_events, service_links=False,
            )
            agent = KubeletAgent(config, runtime=self.runtime, runtime_name="fake", runtime_version="fake://0.1",
                                 probes=self.probes, event_correlator=self.events, metrics=metrics,
                                 close_runtime=False)
            sub = ActorContext(nc=ctx.nc, name="kubelet", instance=node, supervisor=ctx.supervisor,
                               log=ctx.log.bind(node=node), stopping=ctx.stopping)
            await agent.start(sub)
            self.agents.append(agent)
        ctx.log.info("hollow nodes started", nodes=s.nodes, seconds=round(time.monotonic() - started, 2))

    async def close(self) -> None:
        started = time.monotonic()
        await asyncio.gather(*(agent.close() for agent in self.agents))
        await self.runtime.close()
        if self.state_root is not None:
            await asyncio.to_thread(remove_detached, self.state_root)
        if self.started_at is not None:
            self.log.info("hollow nodes closed", nodes=len(self.agents), seconds=round(time.monotonic() - started, 2))

    def registered(self) -> int:
        return sum(1 for a in self.agents if a.heartbeat.registered.is_set())

    def health(self) -> dict[str, Any]:
        sandboxes, containers = self.runtime.counts()
        return {
            "nodes": len(self.agents),
            "registered": self.registered(),
            "synced": sum(1 for a in self.agents if a.informer.synced.is_set()),
            "pods": sum(len(a.informer.store) for a in self.agents),
            "pods_running": sum(a.running_pods() for a in self.agents),
            "sandboxes": sandboxes,
            "containers": containers,
            "lease_renewals": sum(a.heartbeat.renewals for a in self.agents),
            "probes": len(self.probes),
        }
