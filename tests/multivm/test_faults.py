"""The chaos suite's network faults on real namespaces (no cluster): a partition drops a VM's traffic
until healed, a one-way partition only what it receives, and ``injected`` heals even when the body fails."""

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

from tests.chaos.faults import TABLE, FaultError, Loss, Partition, injected
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


def test_injected_heals_when_the_body_fails(net: Network) -> None:
    with pytest.raises(RuntimeError), injected(Loss("loss 40%", cluster=cluster(net), vms=[1], percent=40)):
        assert "numgen random mod 100" in rules(net, 1)
        raise RuntimeError("the workload failed")
    assert rules(net, 1) == ""


def test_bad_loss_is_refused(net: Network) -> None:
    with pytest.raises(FaultError):
        Loss("loss 100%", cluster=cluster(net), vms=[1], percent=100).apply()
