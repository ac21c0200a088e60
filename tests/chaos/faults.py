"""The fault injector for the network-namespace VMs of ``tests.multivm``: each fault is a small class with
``apply()`` and ``heal()``; ``injected(fault)`` heals in a ``finally``, whatever happens in between.

- ``Kill``: kill -9 a process (a NATS server, an API actor, the scheduler, a controller manager, a
  kubelet); healing starts it again with the same command line (a NATS server keeps its store);
- ``Pause``: SIGSTOP, then SIGCONT at heal (a pause longer than the leases, if held long enough);
- ``Partition``: nftables rules in one VM's namespace dropping its traffic to and from the other VMs and
  the client namespace (``one_way``: only what it receives); the VM is the minority, the rest the majority;
- ``Loss``: nftables ``numgen random mod 100 < N drop`` on what the chosen VMs receive;
- a bridge (opt-in kind ``bridge``, Jepsen's): a ``Partition`` of one VM from one other VM only, so that the
  third VM, the bridge, still talks to both sides and to the clients, and so does everyone else;
- ``ClockJump``: one Python actor restarted under libfaketime with its wall clock moved (opt-in kind
  ``clock``, not among the default draws);
- ``DiskFull``: one NATS server's JetStream store (a tmpfs: ``build(..., store_limit_mb=N)``) shrunk to
  what it holds and its last bytes filled, so that every write there fails with ENOSPC; healing frees it
  (opt-in kind ``disk-full``);
- ``Combined``: two faults at once, applied in order and healed in reverse (``FaultPlan(combine=p)`` draws
  a network fault and a process or disk fault together with probability ``p``).

The kernel here has no netem, so no delay injection. ``FaultPlan`` draws faults at random from a seed
(printed by the callers, so that a failing run replays). Every fault records when it was applied and
healed, for the figures.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.leaders import LEADER_ELECTED, leading
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


@dataclass
class DiskFull(Fault):
    """The JetStream store of NATS server ``vm`` full: its tmpfs is shrunk to the bytes it holds (a tmpfs
    cannot shrink below them) and a filler file takes what is left; healing removes the filler and gives
    the tmpfs its size back. ``filled_kb`` says how much the filler took.

    A NATS server whose JetStream store hits ENOSPC disables JetStream ("JetStream out of resources, will
    be DISABLED") and does not enable it again when space comes back: its ``/healthz`` answers
    "JetStream not enabled" until it is restarted. With ``restart_if_disabled`` (the default) the heal
    does what an operator must: free the space, then restart that server if it said so
    (``restarted`` records it); without it the server stays out of the datastore for good."""

    cluster: Cluster
    vm: int = 1
    restart_if_disabled: bool = True
    filled_kb: int = field(default=0, init=False)
    disabled: bool = field(default=False, init=False)
    restarted: bool = field(default=False, init=False)
    _size_kb: int = field(default=0, init=False)
    _log_offset: int = field(default=0, init=False)

    @property
    def filler(self) -> Path:
        return self.cluster.store_dir(self.vm) / ".chaos-disk-full"

    def _remount(self, size_kb: int) -> bool:
        done = subprocess.run(["mount", "-o", f"remount,size={size_kb}k", str(self.cluster.store_dir(self.vm))],
                              capture_output=True, text=True, timeout=20)
        return done.returncode == 0

    def _apply(self) -> None:
        store = self.cluster.store_dir(self.vm)
        if not self.cluster.store_limit_mb or not os.path.ismount(store):
            raise FaultError(f"disk-full needs the stores on tmpfs mounts (build(..., store_limit_mb=N)); "
                             f"{store} is not one")
        stat = os.statvfs(store)
        self._size_kb = stat.f_blocks * stat.f_frsize // 1024
        log = self.cluster.nats[self.vm].log
        self._log_offset = log.stat().st_size if log.exists() else 0
        for _ in range(20):  # the server writes meanwhile: a shrink below its bytes is refused, try again
            stat = os.statvfs(store)
            used_kb = (stat.f_blocks - stat.f_bfree) * stat.f_frsize // 1024
            if self._remount(used_kb + 64):
                break
        else:
            raise FaultError(f"could not shrink {store} to what it holds")
        try:
            with open(self.filler, "wb") as out:
                chunk = b"\0" * 4096
                while True:
                    out.write(chunk)
                    out.flush()
                    self.filled_kb += 4
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                self._heal()
                raise FaultError(f"filling {store}: {exc}") from exc

    def _heal(self) -> None:
        self.filler.unlink(missing_ok=True)
        if self._size_kb and not self._remount(self._size_kb):
            raise FaultError(f"could not give {self.cluster.store_dir(self.vm)} its {self._size_kb} KiB back")
        proc = self.cluster.nats[self.vm]
        with open(proc.log, "rb") as f:
            f.seek(self._log_offset)
            self.disabled = b"will be DISABLED" in f.read()
        if self.disabled and self.restart_if_disabled:
            proc.kill(signal.SIGTERM)
            self.cluster.start_nats(self.vm)
            self.restarted = True


@dataclass
class Combined(Fault):
    """Two (or more) faults at once: applied in order, healed in reverse order, all of them healed even if
    one heal fails (the first error is raised after)."""

    faults: Sequence[Fault] = ()

    def _apply(self) -> None:
        applied: list[Fault] = []
        try:
            for fault in self.faults:
                fault.apply()
                applied.append(fault)
        except BaseException:
            for fault in reversed(applied):
                with contextlib.suppress(Exception):
                    fault.heal()
            raise

    def _heal(self) -> None:
        error: BaseException | None = None
        for fault in reversed(self.faults):
            try:
                fault.heal()
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error


def leaves(faults: Sequence[Fault]) -> list[Fault]:
    """The single faults, combined ones opened up."""
    out: list[Fault] = []
    for fault in faults:
        out += leaves(fault.faults) if isinstance(fault, Combined) else [fault]
    return out


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
ALL_KINDS = (*KINDS, "bridge", "clock", "disk-full", "pause-leader")
PYTHON_TARGETS = ("api", "scheduler", "controller-manager", "kubelet-node")
NETWORK_KINDS = ("partition", "partition-one-way", "loss", "bridge")


@dataclass
class FaultPlan:
    """Faults drawn from ``seed``: the same seed on the same cluster draws the same faults. With
    ``combine`` > 0, that share of the draws are two faults at once: one of the network kinds drawn
    (partition, one-way partition, loss) and one of the others (a kill, a pause, a disk...), so that two
    sets of nftables rules never meet in one VM (the seeds drawn without ``combine`` replay unchanged)."""

    cluster: Cluster
    seed: int
    kinds: Sequence[str] = KINDS
    targets: Sequence[str] = TARGETS
    combine: float = 0.0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        unknown = sorted(set(self.kinds) - set(ALL_KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"unknown fault kinds {unknown}; choose among {', '.join(ALL_KINDS)}")
        if not 0.0 <= self.combine <= 1.0:
            raise ValueError(f"combine is a probability, not {self.combine}")

    def draw(self) -> Fault:
        if self.combine > 0 and self.rng.random() < self.combine:
            network = [k for k in self.kinds if k in NETWORK_KINDS] or [k for k in NETWORK_KINDS if k in KINDS]
            other = [k for k in self.kinds if k not in NETWORK_KINDS] or ["kill"]
            first, second = self.make(self.rng.choice(network)), self.make(self.rng.choice(other))
            return Combined(f"{first.name} + {second.name}", faults=(first, second))
        return self.make(self.rng.choice(list(self.kinds)))

    def make(self, kind: str) -> Fault:
        """One fault of ``kind``, its victim drawn."""
        if kind in ("partition", "partition-one-way"):
            vm = self.rng.choice((1, 2, 3))
            return Partition(f"{kind} vm{vm}", cluster=self.cluster, vm=vm, one_way=kind.endswith("one-way"))
        if kind == "bridge":
            cut = sorted(self.rng.sample((1, 2, 3), 2))
            bridge = ({1, 2, 3} - set(cut)).pop()
            return Partition(f"bridge vm{bridge} (vm{cut[0]} | vm{cut[1]})", cluster=self.cluster, vm=cut[0],
                             peers=[self.cluster.net.address(cut[1])])
        if kind == "loss":
            vms = sorted(self.rng.sample((1, 2, 3), self.rng.choice((1, 3))))
            percent = self.rng.choice((5, 20, 40))
            return Loss(f"loss {percent}% vm{vms}", cluster=self.cluster, vms=vms, percent=percent)
        if kind == "disk-full":
            vm = self.rng.choice((1, 2, 3))
            return DiskFull(f"disk full nats-{vm}", cluster=self.cluster, vm=vm)
        if kind == "pause-leader":  # whoever leads the scheduler's or the controller manager's lease then
            replicas = sorted(live(self.cluster, self.rng.choice(LEADER_ELECTED)), key=lambda p: p.name)
            if not replicas:
                return self.make(self.rng.choice(list(self.kinds)))
            proc = leading(replicas) or self.rng.choice(replicas)
            return Pause(f"pause leader {proc.name}", proc=proc)
        targets = [t for t in self.targets if kind != "clock" or t in PYTHON_TARGETS]
        target = self.rng.choice(targets)
        procs = sorted(live(self.cluster, target), key=lambda p: p.name)
        if not procs:  # nothing of that target alive: another kind (as the seeds of RELIABILITY.md drew)
            return self.make(self.rng.choice(list(self.kinds)))
        proc = self.rng.choice(procs)
        if kind == "pause":
            return Pause(f"pause {proc.name}", proc=proc)
        if kind == "clock":
            offset = self.rng.choice((-300, -60, 60, 300))
            return ClockJump(f"clock {offset:+d}s {proc.name}", cluster=self.cluster, proc=proc, offset_s=offset)
        return Kill(f"kill -9 {proc.name}", proc=proc, restart=restart_proc(self.cluster))
