"""``python -m actors.controllers``: run the controller manager."""

from __future__ import annotations

import argparse

from actors.controllers.manager import ControllerManager
from protocol.network import (
    DEFAULT_CLUSTER_CIDR,
    DEFAULT_NODE_CIDR_MASK,
    DEFAULT_SERVICE_CIDR,
    NetworkConfigError,
    check_ranges,
)
from runtime.actor import actor_main


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--controllers", default="", help="comma-separated controllers to run (default: all)")
    parser.add_argument("--no-leader-elect", action="store_true", help="act without electing a leader")
    parser.add_argument("--node-monitor-grace-period", type=float, default=40.0,
                        help="seconds without a node heartbeat before the node is NotReady/Unknown")
    parser.add_argument("--pod-eviction-timeout", type=float, default=300.0,
                        help="default toleration seconds for unreachable/not-ready taints")
    parser.add_argument("--eviction-rate", type=float, default=10.0, help="pods evicted per second at most")
    parser.add_argument("--cluster-cidr", default=DEFAULT_CLUSTER_CIDR,
                        help="pod addresses; node IPAM gives each Node one block of it")
    parser.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR,
                        help="Service cluster IPs (checked not to overlap the cluster CIDR)")
    parser.add_argument("--node-cidr-mask-size", type=int, default=DEFAULT_NODE_CIDR_MASK,
                        help="prefix length of each Node's pod CIDR")
    parser.add_argument("--horizontal-pod-autoscaler-sync-period", type=float, default=15.0,
                        help="seconds between two looks of the HPA controller at each autoscaler")


def main(argv: list[str] | None = None) -> int:
    def build(a: argparse.Namespace) -> ControllerManager:
        names = [c.strip() for c in a.controllers.split(",") if c.strip()]
        options = {"node_monitor_grace_period": a.node_monitor_grace_period,
                   "pod_eviction_timeout": a.pod_eviction_timeout, "eviction_rate": a.eviction_rate,
                   "cluster_cidr": a.cluster_cidr, "service_cidr": a.service_cidr,
                   "node_cidr_mask": a.node_cidr_mask_size,
                   "hpa_sync_period": a.horizontal_pod_autoscaler_sync_period}
        try:
            check_ranges(a.cluster_cidr, a.service_cidr, a.node_cidr_mask_size)
        except NetworkConfigError as exc:
            raise SystemExit(f"shoal controllers: {exc}") from exc
        return ControllerManager(names or None, leader_elect=not a.no_leader_elect, options=options)

    return actor_main("Shoal controller manager", _arguments, build, argv)


if __name__ == "__main__":
    raise SystemExit(main())
