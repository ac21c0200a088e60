"""The fault injector's parts that need no cluster running: the plan's draws (combined faults, the opt-in
kinds) and the full disk on a real tmpfs (root only: it mounts one)."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from tests.chaos.faults import Combined, DiskFull, FaultPlan, Loss, Partition, leaves
from tests.multivm.cluster import Cluster, Proc
from tests.multivm.netns import Network


def idle_cluster(root: Path, store_limit_mb: int = 0) -> Cluster:
    """A cluster object with nothing started (what the plan and the disk fault read of it)."""
    return Cluster(Network(), root, {}, root / "tls", store_limit_mb=store_limit_mb)


def test_the_plan_combines_a_network_fault_with_another_and_replays(tmp_path: Path) -> None:
    cluster = idle_cluster(tmp_path)
    draws = [FaultPlan(cluster, 7, kinds=("partition", "loss", "disk-full"), combine=1.0) for _ in range(2)]
    first = [draws[0].draw() for _ in range(20)]
    assert [f.name for f in first] == [draws[1].draw().name for _ in range(20)]
    for fault in first:
        assert isinstance(fault, Combined)
        network, other = fault.faults
        assert isinstance(network, Partition | Loss) and isinstance(other, DiskFull)
        assert leaves([fault]) == [network, other]


def test_without_combine_the_seeds_draw_as_before(tmp_path: Path) -> None:
    cluster = idle_cluster(tmp_path)
    plain = FaultPlan(cluster, 26, kinds=("partition", "partition-one-way", "loss"))
    assert not any(isinstance(plain.draw(), Combined) for _ in range(30))
    with pytest.raises(ValueError, match="unknown fault kinds"):
        FaultPlan(cluster, 1, kinds=("flood",))
    with pytest.raises(ValueError, match="probability"):
        FaultPlan(cluster, 1, combine=2.0)


def test_a_bridge_cuts_two_vms_apart_and_leaves_the_third_with_both(tmp_path: Path) -> None:
    cluster = idle_cluster(tmp_path)
    plan = FaultPlan(cluster, 3, kinds=("bridge",))
    for _ in range(20):
        fault = plan.draw()
        assert isinstance(fault, Partition) and not fault.one_way
        (peer,) = fault.peers
        cut = {fault.vm, next(i for i in (1, 2, 3) if cluster.net.address(i) == peer)}
        assert len(cut) == 2
        assert fault.name == f"bridge vm{({1, 2, 3} - cut).pop()} (vm{min(cut)} | vm{max(cut)})"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_store_refuses_writes_until_healed(tmp_path: Path) -> None:
    cluster = idle_cluster(tmp_path, store_limit_mb=16)
    cluster._mount_store(2)
    store = cluster.store_dir(2)
    log = tmp_path / "nats-2.log"
    log.write_text("")
    cluster.nats[2] = Proc("nats-2", 2, ["true"], {}, log)
    try:
        (store / "data").write_bytes(b"x" * 1_000_000)
        fault = DiskFull("disk full nats-2", cluster=cluster, vm=2)
        fault.apply()
        try:
            with pytest.raises(OSError) as refused:
                (store / "more").write_bytes(b"y" * 200_000)
            assert refused.value.errno == errno.ENOSPC
        finally:
            fault.heal()
        (store / "more").write_bytes(b"y" * 200_000)
        assert os.statvfs(store).f_blocks * os.statvfs(store).f_frsize == 16 * 1024 * 1024
        assert not fault.filler.exists() and not fault.disabled and not fault.restarted
    finally:
        subprocess.run(["umount", "-l", str(store)], check=False, timeout=20)
    assert not os.path.ismount(store)


def test_a_disk_fault_without_a_tmpfs_store_is_refused(tmp_path: Path) -> None:
    from tests.chaos.faults import FaultError

    cluster = idle_cluster(tmp_path)
    with pytest.raises(FaultError, match="store_limit_mb"):
        DiskFull("disk full nats-1", cluster=cluster, vm=1).apply()


def test_pause_leader_freezes_whoever_leads_now(tmp_path: Path) -> None:
    """The opt-in ``pause-leader`` kind pauses the replica whose log last says it became leader (not ended by
    "lost leadership" or a restart since), whichever leader-elected actor is drawn."""
    cluster = idle_cluster(tmp_path)
    logs = {
        "scheduler-1": ["became leader lease=kube-scheduler", "lost leadership lease=kube-scheduler"],
        "scheduler-2": ["actor started", "became leader lease=kube-scheduler"],
        "controller-manager-1": ["became leader lease=kube-controller-manager", "actor started"],
        "controller-manager-2": ["actor started"],
    }
    sleepers = []
    try:
        for i, (name, lines) in enumerate(logs.items()):
            log = tmp_path / f"{name}.log"
            log.write_text("".join(f"2026-12-02T00:00:{i * 5 + n:02d}.000000Z [info     ] {line}\n"
                                   for n, line in enumerate(lines)))
            proc = Proc(name, 1, ["sleep", "60"], {}, log)
            proc.popen = subprocess.Popen(["sleep", "60"])
            sleepers.append(proc.popen)
            cluster.procs.append(proc)
        plan = FaultPlan(cluster, 5, kinds=("pause-leader",))
        names = {plan.draw().name for _ in range(30)}
        # scheduler-2 leads; controller-manager-1 restarted since its claim and nobody leads that lease yet
        assert "pause leader scheduler-2" in names
        assert names <= {"pause leader scheduler-2", "pause leader controller-manager-1",
                         "pause leader controller-manager-2"}
        assert "pause leader scheduler-1" not in names
    finally:
        for p in sleepers:
            p.kill()
            p.wait()
