"""The fault injector for the network-namespace VMs of ``tests.multivm``: each fault is a small class with
``apply()`` and ``heal()``; ``injected(fault)`` heals in a ``finally``, whatever happens in between.

- ``Kill``: kill -9 a process (a NATS server, an API actor, the scheduler, a controller manager, a
  kubelet); healing starts it again with the same command line (a NATS server keeps its store);
- ``Pause``: SIGSTOP, then SIGCONT at heal (a pause longer than the leases, if held long enough);
- ``Partition``: nftables rules in one VM's namespace dropping its traffic to and from the other VMs and
  the client namespace (``one_way``: only what it receives); the VM is the minority, the rest the majority;
- ``Loss``: nftables ``numgen random mod 100 < N drop`` on what the chosen VMs receive;
- ``ClockJump``: one Python actor restarted under libfaketime with its wall clock moved (opt-in kind
  ``clock``, not among the default draws).

The kernel here has no netem, so no delay injection. ``FaultPlan`` draws faults at random from a seed
(printed by the callers, so that a failing run replays). Every fault records when it was applied and
healed, for the figures.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.multivm.cluster import Cluster, Proc
from tests.multivm.netns import CLIENT_HOST

TABLE = "shoal_chaos"


class FaultError(RuntimeError):
    """A fault could not be applied or healed (nft refused a rule, a process would not restart)."""


@dataclass
class Fault:
    name: str
    applied_at: float | None = field(default=None, init=False)
    healed_at: float | None = field(default=None, init=False)

    def apply(self) -> None:
        self._apply()
        self.applied_at = time.monotonic()

    def heal(self) -> None:
        if self.applied_at is None or self.healed_at is not None:
            return
        self._heal()
        self.healed_at = time.monotonic()

    def _apply(self) -> None:
        raise NotImplementedError

    def _heal(self) -> None:
        raise NotImplementedError


@contextlib.contextmanager
def injected(fault: Fault) -> Iterator[Fault]:
    try:
        fault.apply()
        yield fault
    finally:
        fault.heal()


@dataclass
class Kill(Fault):
    """kill -9; healed by starting the same process again (``restart`` does it: NATS or an actor)."""

    proc: Proc
    restart: Callable[[Proc], None]

    def _apply(self) -> None:
        self.proc.kill(signal.SIGKILL)

    def _heal(self) -> None:
        self.restart(self.proc)


@dataclass
class Pause(Fault):
    proc: Proc

    def _apply(self) -> None:
        _signal(self.proc, signal.SIGSTOP)

    def _heal(self) -> None:
        _signal(self.proc, signal.SIGCONT)


def _signal(proc: Proc, sig: int) -> None:
    if proc.alive():
        os.kill(proc.pid, sig)


def nft(cluster: Cluster, vm: int, script: str) -> None:
    done = subprocess.run(cluster.net.exec_args(vm, "nft", "-f", "-"), input=script, capture_output=True,
                          text=True, timeout=20)
    if done.returncode != 0:
        raise FaultError(f"nft in vm{vm} refused:\n{script}\n{done.stderr}")


def clear_rules(cluster: Cluster, vm: int) -> None:
    subprocess.run(cluster.net.exec_args(vm, "nft", "delete", "table", "inet", TABLE), capture_output=True,
                   timeout=20)


@dataclass
class Partition(Fault):
    """VM ``vm`` cut from ``peers`` (the other VMs and the client namespace by default)."""

    cluster: Cluster
    vm: int = 0
    peers: Sequence[str] = ()
    one_way: bool = False

    def _apply(self) -> None:
        peers = list(self.peers) or [self.cluster.net.address(i) for i in (1, 2, 3, CLIENT_HOST) if i != self.vm]
        addresses = ", ".join(peers)
        output = "" if self.one_way else f"ip daddr {{ {addresses} }} drop;"
        clear_rules(self.cluster, self.vm)
        nft(self.cluster, self.vm, f"""table inet {TABLE} {{
  chain input {{ type filter hook input priority 0; policy accept; ip saddr {{ {addresses} }} drop; }}
  chain output {{ type filter hook output priority 0; policy accept; {output} }}
}}
""")

    def _heal(self) -> None:
        clear_rules(self.cluster, self.vm)


@dataclass
class Loss(Fault):
    """``percent`` of the packets each of ``vms`` receives on its eth0 dropped at random."""

    cluster: Cluster
    vms: Sequence[int] = ()
    percent: int = 10

    def _apply(self) -> None:
        if not 0 < self.percent < 100:
            raise FaultError(f"packet loss must be within 1..99 %, not {self.percent}")
        for vm in self.vms:
            clear_rules(self.cluster, vm)
            nft(self.cluster, vm, f"""table inet {TABLE} {{
  chain input {{ type filter hook input priority 0; policy accept;
    iifname "eth0" numgen random mod 100 < {self.percent} drop; }}
}}
""")

    def _heal(self) -> None:
        for vm in self.vms:
            clear_rules(self.cluster, vm)


FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


@dataclass
class ClockJump(Fault):
    """The wall clock of one Python actor jumps by ``offset_s`` (libfaketime, Debian's ``faketime``): the
    process is stopped (SIGTERM) and started again under the offset,
    and once more without it at heal. A real jump needs no restart: the restart is part of this fault.
    NATS servers (Go reads the clock without libc) cannot be targets."""

    cluster: Cluster
    proc: Proc
    offset_s: int = 120
    _env: dict[str, str] | None = field(default=None, init=False)

    def _apply(self) -> None:
        if not FAKETIME_LIB.exists():
            raise FaultError(f"clock jumps need libfaketime ({FAKETIME_LIB}: apt-get install faketime)")
        if self.proc.name.startswith("nats-"):
            raise FaultError("a NATS server's clock cannot be moved by libfaketime (Go bypasses libc)")
        self._env = dict(self.proc.env)
        self.proc.kill(signal.SIGTERM)
        # the monotonic clock moves too (libfaketime 0.9.10 makes Python's time.sleep fail with EINVAL when
        # only the wall clock is faked): harmless in a process started afresh, whose monotonic origin is arbitrary
        self.proc.env = {**self._env, "LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": f"{self.offset_s:+d}s"}
        self.proc.start(self.cluster.net)

    def _heal(self) -> None:
        self.proc.kill(signal.SIGTERM)
        if self._env is not None:
            self.proc.env = self._env
        self.proc.start(self.cluster.net)


# -- restarting what was killed --------------------------------------------------------------------
def restart_proc(cluster: Cluster) -> Callable[[Proc], None]:
    def restart(proc: Proc) -> None:
        if proc.alive():
            return
        if proc.name.startswith("nats-"):
            cluster.start_nats(proc.vm)
        else:
            proc.start(cluster.net)
    return restart


def live(cluster: Cluster, prefix: str) -> list[Proc]:
    if prefix == "nats":
        return [p for p in cluster.nats.values() if p.alive()]
    return [p for p in cluster.procs if p.name.startswith(prefix) and p.alive()]


# -- drawing faults at random ---------------------------------------------------------------------
TARGETS = ("nats", "api", "scheduler", "controller-manager", "kubelet-node")
KINDS = ("kill", "pause", "partition", "partition-one-way", "loss")
"""What ``FaultPlan`` draws from by default (the seeds of docs/RELIABILITY.md replay with these)."""
ALL_KINDS = (*KINDS, "clock")
PYTHON_TARGETS = ("api", "scheduler", "controller-manager", "kubelet-node")


@dataclass
class FaultPlan:
    """Faults drawn from ``seed``: the same seed on the same cluster draws the same faults."""

    cluster: Cluster
    seed: int
    kinds: Sequence[str] = KINDS
    targets: Sequence[str] = TARGETS
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self) -> Fault:
        kind = self.rng.choice(list(self.kinds))
        if kind in ("partition", "partition-one-way"):
            vm = self.rng.choice((1, 2, 3))
            return Partition(f"{kind} vm{vm}", cluster=self.cluster, vm=vm, one_way=kind.endswith("one-way"))
        if kind == "loss":
            vms = sorted(self.rng.sample((1, 2, 3), self.rng.choice((1, 3))))
            percent = self.rng.choice((5, 20, 40))
            return Loss(f"loss {percent}% vm{vms}", cluster=self.cluster, vms=vms, percent=percent)
        targets = [t for t in self.targets if kind != "clock" or t in PYTHON_TARGETS]
        target = self.rng.choice(targets)
        procs = sorted(live(self.cluster, target), key=lambda p: p.name)
        if not procs:
            return self.draw()
        proc = self.rng.choice(procs)
        if kind == "pause":
            return Pause(f"pause {proc.name}", proc=proc)
        if kind == "clock":
            offset = self.rng.choice((-300, -60, 60, 300))
            return ClockJump(f"clock {offset:+d}s {proc.name}", cluster=self.cluster, proc=proc, offset_s=offset)
        return Kill(f"kill -9 {proc.name}", proc=proc, restart=restart_proc(self.cluster))
