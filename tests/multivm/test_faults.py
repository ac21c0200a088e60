"""The chaos suite's faults on real namespaces (no cluster): a partition drops a VM's traffic until
healed, a one-way partition only what it receives, ``injected`` heals even when the body fails, and a
clock jump moves one process's wall clock until healed."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from tests.chaos.faults import FAKETIME_LIB, TABLE, ClockJump, FaultError, Loss, Partition, injected
from tests.multivm.cluster import Proc
from tests.multivm.netns import Network, netns_unavailable_reason

PORT = 18080


@pytest.fixture(scope="module")
def net() -> Iterator[Network]:
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    if shutil.which("nft") is None:
        pytest.skip("the fault injector needs nftables (`nft`)")
    network = Network(vms=2)
    server: subprocess.Popen[bytes] | None = None
    try:
        network.create()
        server = subprocess.Popen(network.exec_args(1, sys.executable, "-m", "http.server", "--bind",
                                                    network.address(1), str(PORT)),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        network.enter_client()
        deadline = time.monotonic() + 10
        while not reachable(network.address(1)):
            assert time.monotonic() < deadline, "the test server in vm1 did not come up"
            time.sleep(0.1)
        yield network
    finally:
        if server is not None:
            server.kill()
            server.wait(5)
        network.destroy()


def reachable(address: str) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, PORT), timeout=0.5):
        return True
    return False


def rules(net: Network, vm: int) -> str:
    done = subprocess.run(net.exec_args(vm, "nft", "list", "table", "inet", TABLE), capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def cluster(net: Network) -> Any:
    return SimpleNamespace(net=net)


def test_partition_drops_until_healed(net: Network) -> None:
    fault = Partition("partition vm1", cluster=cluster(net), vm=1)
    with injected(fault):
        assert not reachable(net.address(1))
        assert "drop" in rules(net, 1)
    assert reachable(net.address(1))
    assert rules(net, 1) == ""
    assert fault.applied_at is not None and fault.healed_at is not None


def test_one_way_partition_only_drops_what_the_vm_receives(net: Network) -> None:
    with injected(Partition("one-way vm1", cluster=cluster(net), vm=1, one_way=True)):
        assert not reachable(net.address(1))
        table = rules(net, 1)
        assert "ip saddr" in table and "ip daddr" not in table
    assert reachable(net.address(1))


def reachable_from(net: Network, vm: int, address: str) -> bool:
    probe = f"import socket\nsocket.create_connection(({address!r}, {PORT}), timeout=1).close()"
    return subprocess.run(net.exec_args(vm, sys.executable, "-c", probe), capture_output=True,
                          timeout=20).returncode == 0


def test_a_partition_from_named_peers_cuts_only_those(net: Network) -> None:
    """A bridge's cut: vm1 drops vm2 only, so vm2 no longer reaches it while the client namespace still does."""
    assert reachable_from(net, 2, net.address(1))
    with injected(Partition("bridge client (vm1 | vm2)", cluster=cluster(net), vm=1, peers=[net.address(2)])):
        assert not reachable_from(net, 2, net.address(1))
        assert reachable(net.address(1))
    assert reachable_from(net, 2, net.address(1))


def test_injected_heals_when_the_body_fails(net: Network) -> None:
    with pytest.raises(RuntimeError), injected(Loss("loss 40%", cluster=cluster(net), vms=[1], percent=40)):
        assert "numgen random mod 100" in rules(net, 1)
        raise RuntimeError("the workload failed")
    assert rules(net, 1) == ""


def test_bad_loss_is_refused(net: Network) -> None:
    with pytest.raises(FaultError):
        Loss("loss 100%", cluster=cluster(net), vms=[1], percent=100).apply()


@pytest.mark.skipif(not FAKETIME_LIB.exists(), reason="clock jumps need libfaketime (apt-get install faketime)")
def test_clock_jump_moves_one_process_wall_clock_until_healed(net: Network, tmp_path: Any) -> None:
    script = "import time\nwhile True:\n    print(int(time.time()), flush=True)\n    time.sleep(0.1)\n"
    proc = Proc("clock-probe", 2, [sys.executable, "-c", script], {"PATH": "/usr/bin:/bin"}, tmp_path / "probe.log")

    def last_reading() -> int:
        deadline = time.monotonic() + 10
        size = len(proc.log_text())
        while len(proc.log_text()) == size or not proc.log_text().strip():
            assert time.monotonic() < deadline, proc.log_text()[-500:]
            time.sleep(0.1)
        return int(proc.log_text().split()[-1])

    proc.start(net)
    try:
        assert abs(last_reading() - time.time()) < 5
        with injected(ClockJump("clock +300s", cluster=cluster(net), proc=proc, offset_s=300)):
            assert 290 < last_reading() - time.time() < 310
        assert abs(last_reading() - time.time()) < 5
    finally:
        proc.kill()
