"""``python -m agents.kubelet --node-name NAME [--runtime podman|fake] [--address IP] [--podman-socket URL]
[--state-dir DIR]``: one node's kubelet.

With the Podman runtime and no ``--podman-socket`` (nor ``SHOAL_PODMAN_SOCKET``), the agent starts its
own ``podman system service`` under ``<state-dir>/podman`` (configured for this host by
``podman_service``) and stops it on exit; containers keep running (conmon holds them) and are adopted by
the next start. The local test image ``localhost/shoal/busybox:latest`` is built once if missing.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from agents.kubelet.agent import KubeletAgent, RuntimeSetup
from agents.kubelet.config import KubeletConfig
from agents.kubelet.fake_runtime import FakeRuntime
from agents.kubelet.images import ensure_local_images
from agents.kubelet.node import StaticMetrics
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import start_podman_service
from agents.kubelet.probes import AlwaysPassProber
from runtime.actor import actor_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--runtime", choices=("podman", "fake"), default="podman")
    parser.add_argument("--address", default="127.0.0.1", help="the node's InternalIP; hostPorts bind here")
    parser.add_argument("--podman-socket", default=None, help="unix:// URL of a running Podman service")
    parser.add_argument("--state-dir", default="/var/lib/shoal/kubelet", type=Path)
    parser.add_argument("--cpu", default=None, help="capacity override, e.g. 4 or 3500m")
    parser.add_argument("--memory", default=None, help="capacity override, e.g. 8Gi")
    parser.add_argument("--max-pods", type=int, default=110)
    parser.add_argument("--label", action="append", default=[], help="extra node label key=value (repeatable)")
    parser.add_argument("--backoff-base", type=float, default=10.0, help="crash-loop back-off start (s)")
    parser.add_argument("--backoff-max", type=float, default=300.0, help="crash-loop back-off cap (s)")
    parser.add_argument("--lease-interval", type=float, default=10.0)
    parser.add_argument("--status-interval", type=float, default=10.0)
    parser.add_argument("--no-events", action="store_true", help="do not record Events")
    parser.add_argument("--volume-refresh", type=float, default=20.0,
                        help="re-read the ConfigMaps/Secrets of running pods at most this often (s)")
    parser.add_argument("--service-gateway", default="auto",
                        help="address where containers reach node ports (default: the Podman bridge gateway)")
    parser.add_argument("--pod-network", choices=("auto", "bridge", "loopback"), default="auto",
                        help="bridge: a Podman bridge network with the node's podCIDR; loopback: the fallback "
                             "(pod addresses on the node's loopback); auto: loopback for a loopback --pod-cidr "
                             "or the fake runtime, else bridge")
    parser.add_argument("--pod-cidr", default=None,
                        help="this node's pod network (default: as node IPAM assigns, or 127.88.0.0/16 in "
                             "loopback mode); give nodes sharing a machine different ranges")
    parser.add_argument("--node-routes", action=argparse.BooleanOptionalAction, default=True,
                        help="bridge mode: route every other node's podCIDR via its address (pods across nodes)")
    parser.add_argument("--podman-trace", default=None, type=Path,
                        help="append one JSON line per Podman API call (name, start, seconds) to this file "
                             "(for bench_pod_startup's per-call breakdown)")
    parser.add_argument("--cluster-name", default="shoal",
                        help="names this node's Podman network (shoal-<cluster>-<node>)")


def pod_network_mode(args: argparse.Namespace) -> str:
    if args.pod_network != "auto":
        return str(args.pod_network)
    if args.runtime == "fake":
        return "loopback"
    if args.pod_cidr and ipaddress.ip_network(args.pod_cidr).is_loopback:
        return "loopback"
    return "bridge"


def config_from(args: argparse.Namespace) -> KubeletConfig:
    labels = dict(item.split("=", 1) for item in args.label if "=" in item)
    mode = pod_network_mode(args)
    pod_cidr = args.pod_cidr or ("127.88.0.0/16" if mode == "loopback" else None)
    gateway_auto = args.service_gateway == "auto" and args.runtime == "podman" and mode == "loopback"
    return KubeletConfig(
        node_name=args.node_name, address=args.address, state_dir=Path(args.state_dir), labels=labels,
        cpu=args.cpu, memory=args.memory, max_pods=args.max_pods, backoff_base=args.backoff_base,
        backoff_max=args.backoff_max, lease_renew_interval=args.lease_interval,
        node_status_interval=args.status_interval, record_events=not args.no_events,
        measure_host=args.runtime == "podman", pod_cidr=pod_cidr, pod_network=mode, cluster_name=args.cluster_name,
        node_routes=args.node_routes, volume_refresh=args.volume_refresh,
        service_gateway=(bridge_gateway() if gateway_auto
                         else None if args.service_gateway == "auto" else args.service_gateway),
    )


def bridge_gateway() -> str | None:
    """The default Podman network's gateway on this host (None when Podman or the network is absent)."""
    if shutil.which("podman") is None:
        return None
    done = subprocess.run(["podman", "network", "inspect", "podman", "--format",
                           "{{range .Subnets}}{{.Gateway}} {{end}}"], capture_output=True, text=True, check=False)
    gateways = done.stdout.split()
    return gateways[0] if done.returncode == 0 and gateways else None


def podman_version() -> str:
    if shutil.which("podman") is None:
        return "podman://unknown"
    done = subprocess.run(["podman", "--version"], capture_output=True, text=True, check=False)
    return f"podman://{done.stdout.strip().rsplit(' ', 1)[-1] or 'unknown'}"


def podman_factory(state_dir: Path, socket: str | None, trace: Path | None = None):  # type: ignore[no-untyped-def]
    async def setup() -> RuntimeSetup:
        service = await start_podman_service(state_dir=state_dir / "podman", socket_url=socket)
        await asyncio.to_thread(ensure_local_images, service.env)
        return RuntimeSetup(PodmanRuntime(service.socket_url, trace=trace), await asyncio.to_thread(podman_version),
                            service.close)

    return setup


def build(args: argparse.Namespace) -> KubeletAgent:
    config = config_from(args)
    if args.runtime == "fake":
        fake = FakeRuntime()
        return KubeletAgent(config, runtime=fake, runtime_name="fake", runtime_version="fake://0.1",
                            prober=AlwaysPassProber(fake),
                            metrics=StaticMetrics(args.cpu or "8", args.memory or "32Gi"))
    config.state_dir.mkdir(parents=True, exist_ok=True)
    return KubeletAgent(config, runtime_factory=podman_factory(config.state_dir, args.podman_socket,
                                                                       args.podman_trace))


def main(argv: Sequence[str] | None = None) -> int:
    return actor_main("Shoal kubelet: runs the pods bound to one node", add_arguments, build, argv)


if __name__ == "__main__":
    sys.exit(main())
