"""``python -m agents.dns --node-name NAME [--listen HOST:PORT ...] [--no-gateway]``: the node's cluster DNS."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from agents.dns.agent import FORBIDDEN_UPSTREAMS, DnsAgent, allowed_upstreams, resolv_conf_nameservers
from protocol.network import CLUSTER_DOMAIN
from runtime.actor import actor_main


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return (host or text, int(port)) if port.isdigit() else (text, 53)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node-name", default=socket.gethostname())
    parser.add_argument("--listen", action="append", default=[], help="extra HOST[:PORT] to serve on (repeatable)")
    parser.add_argument("--no-gateway", action="store_true",
                        help="do not serve on the node's pod-network gateway (the pods' nameserver)")
    parser.add_argument("--domain", default=CLUSTER_DOMAIN)
    parser.add_argument("--upstream", action="append", default=None,
                        help="resolver HOST[:PORT] for other names (default: the nameservers of --resolv-conf)")
    parser.add_argument("--resolv-conf", default="/etc/resolv.conf", type=Path)
    parser.add_argument("--forbid-upstream", default=",".join(FORBIDDEN_UPSTREAMS),
                        help="comma-separated ranges never forwarded to ('' allows all)")
    parser.add_argument("--no-forward", action="store_true", help="answer SERVFAIL for names outside the domain")


def build(a: argparse.Namespace) -> DnsAgent:
    listen = [_address(x) for x in a.listen]
    upstreams: list[tuple[str, int]] = []
    if not a.no_forward:
        given = [_address(x) for x in a.upstream] if a.upstream else [
            (ip, 53) for ip in resolv_conf_nameservers(a.resolv_conf.read_text() if a.resolv_conf.exists() else "")]
        allowed = allowed_upstreams([h for h, _ in given], a.forbid_upstream.split(","), [h for h, _ in listen])
        upstreams = [(h, p) for h, p in given if h in allowed]
    return DnsAgent(a.node_name, listen=listen, gateway=not a.no_gateway, domain=a.domain, upstreams=upstreams)


def main(argv: list[str] | None = None) -> int:
    return actor_main("Shoal cluster DNS", _arguments, build, argv)


if __name__ == "__main__":
    raise SystemExit(main())
