"""deploy/README.md followed as a new user would: its shell steps, word for word (addresses replaced), on
three "VMs" booted with real systemd (``tests.multivm.vms``), then a fourth added with ``add-node.sh``.

The steps are read from the guide itself, so the guide cannot drift from what is tested. Every command's
output is in ``$TMPDIR/shoal-guide/vmN.log``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.multivm.netns import Network, netns_unavailable_reason
from tests.multivm.vms import REPO, VM, VMs, build_wheelhouse, system_containers_unavailable_reason

GUIDE = REPO / "deploy" / "README.md"
GUIDE_ADDRESSES = {f"10.0.0.1{i}": Network.address(i) for i in range(1, 5)}
ADMIN_ENV = "set -a; . /etc/shoal/shoal.env; . /etc/shoal/creds/admin.env; set +a\n"
SHOAL = "/opt/shoal/.venv/bin/shoal"


def guide_steps() -> dict[int, str]:
    """The guide's ``sh`` blocks that start with ``# step N``, by N."""
    steps: dict[int, str] = {}
    for block in re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL):
        found = re.match(r"# step (\d+)", block)
        if found:
            steps[int(found.group(1))] = block
    return steps


def for_vm(step: str, vm: VM | None = None) -> str:
    for guide_address, address in GUIDE_ADDRESSES.items():
        step = step.replace(guide_address, address)
    if vm is not None:
        step = step.replace("10.0.0.X", vm.address).replace("vmN", vm.name)
    return step


def eventually(vm: VM, script: str, ok: re.Pattern[str], timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        done = vm.sh(script, check=False, timeout=60)
        out = done.stdout + done.stderr
        if done.returncode == 0 and ok.search(done.stdout):
            return done.stdout
        time.sleep(2)
    raise AssertionError(f"{what}: not after {timeout:.0f} s; last output on {vm.name}:\n{out[-3000:]}")


def journal(vm: VM) -> str:
    return vm.sh("journalctl -u 'shoal-*' --no-pager -n 60 -o cat", check=False).stdout


@pytest.fixture(scope="module")
def vms() -> Iterator[VMs]:
    reason = netns_unavailable_reason() or system_containers_unavailable_reason()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.gettempdir()) / "shoal-guide"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    net = Network(vms=4)
    machines = VMs(net, root, build_wheelhouse(Path(tempfile.gettempdir())))
    try:
        net.create()
        machines.boot()
        # the guide's preconditions: root SSH from vm1 to the others, the checkout on vm1 in /root/shoal
        machines.trust_root_ssh_from(machines.vms[0])
        machines.copy_checkout(machines.vms[0], "/root/shoal")
        yield machines
    finally:
        if os.environ.get("SHOAL_GUIDE_KEEP"):  # post-mortem: `podman exec -it shoal-guide-...-vm1 bash`
            print(f"\nkept: the VMs {[vm.container for vm in machines.vms]}, namespaces {net.created}")
        else:
            machines.destroy()
            net.destroy()


def test_the_guide_has_its_steps() -> None:
    assert sorted(guide_steps()) == [1, 2, 3, 4, 5, 6, 7]


def test_steps_1_to_4_three_vms_to_a_cluster(vms: VMs) -> None:
    steps = guide_steps()
    vm1, vm2, vm3, _vm4 = vms.vms
    vm1.sh(for_vm(steps[1]), timeout=600)
    vm1.sh(for_vm(steps[2]), timeout=300)
    for vm in (vm2, vm3):
        vm.sh("test -x /root/shoal/deploy/install-vm.sh && test -f /root/shoal-secrets/nats-auth.conf")
    # step 3 on the three VMs at the same time, as three terminals would
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda vm: vm.sh(for_vm(steps[3], vm), timeout=600), (vm1, vm2, vm3)))
    for vm in (vm1, vm2, vm3):
        units = vm.sh("systemctl list-units 'shoal-*' --no-legend --plain").stdout
        assert "shoal-nats.service" in units and "shoal-kubelet.service" in units, units
    check = for_vm(steps[4])
    try:
        out = eventually(
            vm2, check, re.compile(r"(?ms)^vm1\s+Ready.*^vm2\s+Ready.*^vm3\s+Ready"), 240, "vm1..vm3 Ready"
        )
    except AssertionError:
        print(journal(vm1))
        raise
    # the datastore's stream is replicated on the three servers
    assert re.search(r'"name": "KV_shoal"', out), out
    assert re.search(r'"num_replicas": 3', out), out
    # every component runs as the guide says, under systemd, with the users it says
    for vm in (vm1, vm2, vm3):
        active = vm.sh(
            "systemctl is-active shoal-nats shoal-api@1 shoal-scheduler shoal-controller-manager "
            "shoal-cloud-controller-manager shoal-kubelet shoal-proxy"
        ).stdout.split()
        assert active == ["active"] * 7, (vm.name, active)
        owner = vm.sh("ps -o user= -C nats-server").stdout.split()
        assert owner == ["shoal"], owner


def test_step_5_a_first_workload_across_the_vms(vms: VMs) -> None:
    vm1, vm2, vm3, _vm4 = vms.vms
    script = ADMIN_ENV + for_vm(guide_steps()[5])
    vm3.sh(script, timeout=300)
    pods = vm1.sh(ADMIN_ENV + f"{SHOAL} get pods -o wide").stdout
    placed = dict(re.findall(r"(?m)^(web-\S+)\s+1/1\s+Running\s+\d+\s+\S+\s+(198\.18\.\d+\.\d+)\s+vm[123]\b", pods))
    nodes = set(re.findall(r"\b(vm[123])\b", pods))
    assert nodes == {"vm1", "vm2", "vm3"} and len(placed) == 3, pods  # one per node: hostPort 8080
    # every node's proxy serves the NodePort on every node address (the node's own, and from another VM),
    # spreading requests over the three pods on three VMs, its own local pod included
    for vm, target in ((vm1, vm1), (vm2, vm2), (vm3, vm3), (vm1, vm2), (vm2, vm3), (vm3, vm1)):
        # 40 requests miss one of three pods with odds 3 x (2/3)^40, 1e-7; asked again while the proxies
        # may still be taking up the endpoints the rollout just made ready
        curls = f"for i in $(seq 40); do curl -s --max-time 5 {target.address}:30080 || echo FAILED; done"
        served: list[str] = []
        for _ in range(3):
            served = vm.sh(curls).stdout.split()
            if set(served) == set(placed):
                break
            time.sleep(2)
        assert set(served) == set(placed), (vm.name, target.name, served)
    # every VM reaches every pod by its podIP, and a pod on one VM reaches pods on the others by theirs
    for vm in (vm1, vm2, vm3):
        for name, ip in placed.items():
            assert vm.sh(f"curl -s --max-time 5 {ip}:8080").stdout.strip() == name, (vm.name, name, ip)
    client = vm1.sh("podman ps --format '{{.Names}}' | grep '^shoal_httpd_web-'").stdout.split()[0]
    for name, ip in placed.items():
        got = vm1.sh(f"podman exec {client} sh -c \"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {ip} 8080\"")
        assert got.stdout.rstrip().endswith(name), (name, ip, got.stdout)


def agents_by_node(vm: VM) -> dict[str, str]:
    """The node-agent DaemonSet's Running pods, by node."""
    pods = vm.sh(ADMIN_ENV + f"{SHOAL} get pods -l app=node-agent -o wide").stdout
    return {node: name for name, node in
            re.findall(r"(?m)^(node-agent-\S+)\s+1/1\s+Running\s+\d+\s+\S+\s+198\.18\.\d+\.\d+\s+(vm\d)\b", pods)}


def test_step_6_a_daemonset_on_every_node(vms: VMs) -> None:
    vm1, vm2, _vm3, _vm4 = vms.vms
    out = vm2.sh(ADMIN_ENV + for_vm(guide_steps()[6]), timeout=300).stdout
    assert 'daemon set "node-agent" successfully rolled out' in out, out
    placed = agents_by_node(vm1)
    assert sorted(placed) == ["vm1", "vm2", "vm3"], placed  # one pod per node, on each
    for node, pod in placed.items():  # each knows its node (downward API)
        log = vm1.sh(ADMIN_ENV + f"{SHOAL} logs {pod}").stdout
        assert log.strip() == f"agent on {node}", (pod, log)


def test_step_7_add_a_node_with_one_command(vms: VMs) -> None:
    vm1, _vm2, _vm3, vm4 = vms.vms
    vm1.sh(for_vm(guide_steps()[7]), timeout=600)
    assert vm4.sh("systemctl is-active shoal-kubelet shoal-proxy").stdout.split() == ["active", "active"]
    eventually(vm1, ADMIN_ENV + f"{SHOAL} get nodes", re.compile(r"(?m)^vm4\s+Ready"), 120, "vm4 Ready")
    # the new node holds its own credentials only; the others' node credentials are untouched
    assert vm4.sh("ls /etc/shoal/creds").stdout.split() == ["kubelet-vm4.env", "kubelet.env", "proxy-vm4.env",
                                                            "proxy.env"]
    for vm in vms.vms:
        users = vm.sh("grep -h SHOAL_USER= /etc/shoal/creds/kubelet.env /etc/shoal/creds/proxy.env").stdout.split()
        assert users == [f"SHOAL_USER=kubelet-{vm.name}", f"SHOAL_USER=proxy-{vm.name}"], (vm.name, users)
    # the DaemonSet of step 6 follows the new node
    deadline = time.monotonic() + 120
    while sorted(placed := agents_by_node(vm1)) != ["vm1", "vm2", "vm3", "vm4"] and time.monotonic() < deadline:
        time.sleep(2)
    assert sorted(placed) == ["vm1", "vm2", "vm3", "vm4"], placed


def test_systemd_brings_a_killed_actor_back(vms: VMs) -> None:
    vm1 = vms.vms[0]
    before = vm1.sh("systemctl show -p MainPID --value shoal-api@1").stdout.strip()
    vm1.sh("systemctl kill -s KILL shoal-api@1")
    eventually(
        vm1,
        "systemctl show -p MainPID --value shoal-api@1; systemctl is-active shoal-api@1",
        re.compile(r"^(?!0\n)(?!" + before + r"\n)\d+\nactive", re.M),
        30,
        "shoal-api@1 restarted",
    )
    eventually(vm1, ADMIN_ENV + f"{SHOAL} get deploy web", re.compile(r"web\s+3/3"), 60, "web 3/3 still")


def test_a_vm_powered_off_and_on_again(vms: VMs) -> None:
    """vm3 loses power (its systemd, NATS server, API actor, controller managers, kubelet and pod die at
    once): writes go on with two of three servers; vm3 goes NotReady; powered on, its enabled units come
    back, and it is Ready again with its pod running."""
    vm1, vm2, vm3, _vm4 = vms.vms
    vms.power_off(vm3)
    # if vm3 led the datastore's stream, the write waits out the re-election (a few seconds): asked again
    eventually(vm1, ADMIN_ENV + f"{SHOAL} scale deploy/web --replicas 4", re.compile("scaled"), 60, "scale to 4")
    eventually(vm2, ADMIN_ENV + f"{SHOAL} get nodes", re.compile(r"(?m)^vm3\s+NotReady"), 120, "vm3 NotReady")
    vms.power_on(vm3)
    eventually(vm1, ADMIN_ENV + f"{SHOAL} get nodes", re.compile(r"(?m)^vm3\s+Ready"), 180, "vm3 Ready again")
    # seen from vm3: the write made while it was off (the scale to 4) is there, and its own pod runs again
    eventually(vm3, ADMIN_ENV + f"{SHOAL} get deploy web", re.compile(r"web\s+4/4"), 180, "web 4/4 seen on vm3")
    assert vm3.sh("systemctl is-active shoal-nats shoal-api@1 shoal-kubelet").stdout.split() == ["active"] * 3
