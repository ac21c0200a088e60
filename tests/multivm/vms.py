"""System containers as VMs for the deploy-guide test: each "VM" runs real systemd as its PID 1 in a Podman
container that lives in one of the test's network namespaces (``tests.multivm.netns``), with Podman inside
it for the kubelet, sshd for the guide's ``rsync``/``ssh`` steps, and nothing else.

The root file system is the host's ``/usr`` (read-only: the VM runs the host's packages, so
``install-vm.sh`` finds python3, podman, openssl... already installed and installs nothing) under a copy
of the host's ``/etc`` and ``dpkg`` database, made writable per VM by an overlay. A VM has no way out of
its namespace: ``pip`` reads a wheelhouse prepared on the host (``/etc/pip.conf``: ``no-index``), as on
an air-gapped VM with a local mirror.

What this sandbox needs and a real VM does not (and the guide therefore does not say):
- none of the host's Podman network definitions (``/etc/containers/networks``) in the copy of its ``/etc``;
- a drop-in raising no limit past the sandbox's hard ``nofile`` of 20,000 (the units ask for 65,536);
- the VM's Podman storage on a host directory (overlay on the container's overlay root does not work).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.multivm.netns import Network

REPO = Path(__file__).resolve().parents[2]
WHEELS_IN_VM = "/var/cache/shoal-wheels"
# services of the host's /etc that a Shoal VM does not start (databases, the host's podman socket...)
KEEP_WANTS = {"ssh.service"}


def system_containers_unavailable_reason() -> str | None:
    for tool in ("podman", "sshd", "rsync", "openssl", "busybox"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"the deploy-guide test needs {tool} on the host (deploy/test.sh installs it)"
    if not Path("/usr/bin/systemd").exists() and not Path("/lib/systemd/systemd").exists():
        return "the deploy-guide test needs systemd on the host (its VMs boot it)"
    return None


def _run(argv: list[str], timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        command = " ".join(argv[:6])
        raise RuntimeError(f"{command}... exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def build_wheelhouse(cache_root: Path) -> Path:
    """Wheels of Shoal's dependencies (and its build backend), cached by ``pyproject.toml``'s content."""
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:12]
    wheels = cache_root / f"shoal-wheelhouse-{digest}"
    if (wheels / ".complete").exists():
        return wheels
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "download", "-q", "-d", str(wheels), "setuptools>=68", "wheel"], timeout=600)
    _run([*pip, "wheel", "-q", "-w", str(wheels), f"{REPO}[fast]"], timeout=600)
    (wheels / ".complete").touch()
    return wheels


def build_base(root: Path) -> Path:
    """The VMs' shared lower layer: the host's /etc and dpkg database, /usr mounted from the host."""
    base = root / "base"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    for d in (
        "usr",
        "var/lib",
        "var/log",
        "var/tmp",
        "var/cache",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "root",
        "opt",
        "home",
        "srv",
        "mnt",
    ):
        (base / d).mkdir(parents=True, exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")):
        (base / link).symlink_to(target)
    _run(["cp", "-a", "/etc/.", str(base / "etc")])
    _run(["cp", "-a", "/var/lib/dpkg", str(base / "var/lib/")])
    etc = base / "etc"
    for wants in (etc / "systemd/system").glob("*.wants"):
        for unit in wants.iterdir():
            if unit.name not in KEEP_WANTS:
                unit.unlink()
    # a new VM's Podman has no networks: the host's (a test's leftover bridge on 198.18.0.0/24, say) would
    # make a VM's kubelet fail to create its own ("subnet is already used ... by another config")
    for network in (etc / "containers/networks").glob("*.json"):
        network.unlink()
    (etc / "fstab").write_text("")
    (etc / "machine-id").write_text("")
    (etc / "pip.conf").write_text(f"[global]\nno-index = true\nfind-links = {WHEELS_IN_VM}\n")
    (etc / "xdg/pip/pip.conf").unlink(missing_ok=True)  # the host's index settings: the VM has its own
    dropin = etc / "systemd/system/service.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "10-sandbox-limits.conf").write_text(
        "# this sandbox's hard nofile limit is 20000; the units ask for 65536 (fine on a real VM)\n"
        "[Service]\nLimitNOFILE=20000\n"
    )
    return base


@dataclass
class VM:
    index: int
    name: str
    address: str
    container: str
    log: Path

    def sh(self, script: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``script`` as root in a login shell on this VM (what a user types after ``ssh root@vm``)."""
        started = time.monotonic()
        done = subprocess.run(
            ["podman", "exec", "-w", "/root", self.container, "bash", "-lc", f"set -euo pipefail\n{script}"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        with self.log.open("a") as out:
            out.write(f"\n$ {script}\n# exit {done.returncode} after {time.monotonic() - started:.1f} s\n")
            out.write(done.stdout)
            out.write(done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(
                f"on {self.name}, exit {done.returncode}:\n$ {script}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
        return done


@dataclass
class VMs:
    net: Network
    root: Path
    wheels: Path
    vms: list[VM] = field(default_factory=list)

    def boot(self) -> None:
        base = build_base(self.root)
        for i in range(1, self.net.vms + 1):
            name = f"vm{i}"
            storage = self.root / f"{name}-containers"
            storage.mkdir(parents=True, exist_ok=True)
            container = f"shoal-guide-{self.net.tag}-{name}"
            _run(["podman", "rm", "-f", "-t", "0", container], check=False)
            _run(
                [
                    "podman",
                    "run",
                    "-d",
                    "--name",
                    container,
                    "--hostname",
                    name,
                    "--privileged",
                    "--cgroupns=private",
                    "--systemd=always",
                    "--ulimit",
                    "nofile=20000:20000",
                    "--ulimit",
                    "nproc=32768:32768",
                    "--network",
                    f"ns:/run/netns/{self.net.vm_ns(i)}",
                    "-v",
                    "/usr:/usr:ro",
                    "-v",
                    f"{self.wheels}:{WHEELS_IN_VM}:ro",
                    "-v",
                    f"{storage}:/var/lib/containers",
                    "--rootfs",
                    f"{base}:O",
                    "/usr/bin/systemd",
                ]
            )
            self.vms.append(VM(i, name, self.net.address(i), container, self.root / f"{name}.log"))
        for vm in self.vms:
            self._wait_booted(vm)

    @staticmethod
    def _wait_booted(vm: VM) -> None:
        # "degraded" is fine (a unit of the host's /etc we did not mean to start); "starting" is not yet
        vm.sh(
            "for _ in $(seq 150); do s=$(systemctl is-system-running || true); "
            "case $s in running|degraded) exit 0;; esac; sleep 0.2; done; echo $s; exit 1",
            timeout=60,
        )

    def trust_root_ssh_from(self, first: VM) -> None:
        """The guide's precondition: root SSH from the first VM to the others."""
        first.sh(
            "mkdir -p -m 0700 /root/.ssh && ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519 && "
            "printf 'Host *\\n  StrictHostKeyChecking accept-new\\n' >/root/.ssh/config"
        )
        key = first.sh("cat /root/.ssh/id_ed25519.pub").stdout.strip()
        for vm in self.vms:
            vm.sh(
                f"mkdir -p -m 0700 /root/.ssh && echo '{key}' >>/root/.ssh/authorized_keys && "
                "systemctl is-active ssh.service"
            )

    def copy_checkout(self, vm: VM, dest: str) -> None:
        """A clean checkout of this repository (tracked files only, as `git clone` gives) on ``vm``."""
        staging = self.root / "checkout"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        listed = _run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        files = listed.stdout.split("\0")
        for rel in filter(None, files):
            src = REPO / rel
            if src.is_file():
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, staging / rel)
        vm.sh(f"rm -rf {dest} && mkdir -p {dest}")
        _run(["podman", "cp", f"{staging}/.", f"{vm.container}:{dest}"])

    def power_off(self, vm: VM) -> None:
        """Pull the plug: every process of the VM is killed at once (no orderly shutdown), and its kernel
        network state (addresses, the Podman bridge, firewall rules) is gone, as a reboot leaves it."""
        _run(["podman", "kill", vm.container])
        _run(["podman", "wait", vm.container], check=False)
        self.net.reset_vm(vm.index)

    def power_on(self, vm: VM) -> None:
        """Boot the VM again from its disk (the container's overlay keeps what was written)."""
        _run(["podman", "start", vm.container])
        self._wait_booted(vm)

    def destroy(self) -> None:
        for vm in self.vms:
            _run(["podman", "rm", "-f", "-t", "0", vm.container], check=False, timeout=120)
        self.vms.clear()
