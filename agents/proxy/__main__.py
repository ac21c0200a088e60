"""``python -m agents.proxy --node-name NAME``: run the proxy agent for one node."""

from __future__ import annotations

import argparse
import socket

from agents.proxy.agent import ProxyAgent
from runtime.actor import actor_main


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node-name", default=socket.gethostname())
    parser.add_argument("--nodeport-addresses", default="0.0.0.0",
                        help="comma-separated addresses where NodePort services listen")
    parser.add_argument("--drain-seconds", type=float, default=30.0,
                        help="how long connections of a removed service may finish")


def main(argv: list[str] | None = None) -> int:
    return actor_main("Shoal proxy agent", _arguments, lambda a: ProxyAgent(
        a.node_name, node_addresses=[x.strip() for x in a.nodeport_addresses.split(",") if x.strip()],
        drain_seconds=a.drain_seconds), argv)


if __name__ == "__main__":
    raise SystemExit(main())
