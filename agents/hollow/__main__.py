"""``python -m agents.hollow --nodes 1000 [--prefix hollow-]``: many fake-runtime kubelets in one process."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agents.hollow.nodes import HollowNodes, HollowSettings
from runtime.actor import actor_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--prefix", default="hollow-")
    parser.add_argument("--cpu", default="8")
    parser.add_argument("--memory", default="32Gi")
    parser.add_argument("--max-pods", type=int, default=110)
    parser.add_argument("--lease-interval", type=float, default=10.0)
    parser.add_argument("--status-interval", type=float, default=10.0)
    parser.add_argument("--relist-interval", type=float, default=5.0)
    parser.add_argument("--events", action="store_true", help="record Events (off by default: load)")


def build(args: argparse.Namespace) -> HollowNodes:
    return HollowNodes(HollowSettings(
        nodes=args.nodes, prefix=args.prefix, cpu=args.cpu, memory=args.memory, max_pods=args.max_pods,
        lease_interval=args.lease_interval, status_interval=args.status_interval,
        relist_interval=args.relist_interval, record_events=args.events,
    ))


def main(argv: Sequence[str] | None = None) -> int:
    return actor_main("Shoal hollow nodes: N kubelets on the fake runtime in one process", add_arguments,
                      build, argv)


if __name__ == "__main__":
    sys.exit(main())
