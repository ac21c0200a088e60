"""``python -m agents.proxy --node-name NAME``: run the proxy agent for one node."""

from __future__ import annotations

import argparse
import socket

from agents.proxy.agent import ProxyAgent
from agents.proxy.datapath import KINDS, choose
from protocol.network import DEFAULT_SERVICE_CIDR
from runtime.actor import actor_main


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node-name", default=socket.gethostname())
    parser.add_argument("--nodeport-addresses", default="0.0.0.0",
                        help="comma-separated addresses where NodePort services listen")
    parser.add_argument("--drain-seconds", type=float, default=30.0,
                        help="how long connections of a removed service may finish")
    parser.add_argument("--datapath", choices=KINDS, default="auto",
                        help="nftables (DNAT in the kernel), userspace (relays), auto: nftables where nft works")
    parser.add_argument("--cluster-name", default="shoal", help="names the nftables table (shoal-<cluster>)")
    parser.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR, help="the Service cluster IP range")


def build(a: argparse.Namespace) -> ProxyAgent:
    datapath = choose(a.datapath, cluster=a.cluster_name, service_cidr=a.service_cidr,
                      drain_seconds=a.drain_seconds)
    return ProxyAgent(a.node_name, node_addresses=[x.strip() for x in a.nodeport_addresses.split(",") if x.strip()],
                      datapath=datapath, drain_seconds=a.drain_seconds)


def main(argv: list[str] | None = None) -> int:
    return actor_main("Shoal proxy agent", _arguments, build, argv)


if __name__ == "__main__":
    raise SystemExit(main())
