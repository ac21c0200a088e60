"""``python -m actors.gateway``: run one Kubernetes API gateway."""

from __future__ import annotations

import argparse
from pathlib import Path

from actors.gateway.server import GatewayActor, GatewaySettings
from actors.gateway.watchslots import WATCHES_PER_USER
from protocol.network import DEFAULT_SERVICE_CIDR
from runtime.actor import actor_main


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", default="127.0.0.1:6443", help="HOST:PORT to serve HTTPS on")
    parser.add_argument("--tls-cert", type=Path, help="serving certificate (PEM); without it plain HTTP")
    parser.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    parser.add_argument("--admin-token-file", type=Path, help="file holding the cluster owner's bearer token")
    parser.add_argument("--client-ca", type=Path, help="accept client certificates signed by this CA (PEM)")
    parser.add_argument("--advertise-address", default=None,
                        help="an address pods reach this gateway at: kept in the Endpoints of the kubernetes "
                             "Service in default (in-cluster clients); default: none")
    parser.add_argument("--advertise-node", default=None,
                        help="also listen on this node's pod-network gateway and advertise that address for the "
                             "kubernetes Service (one machine: shoal up)")
    parser.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR,
                        help="the cluster's service range (the kubernetes Service takes its first address)")
    parser.add_argument("--watches-per-user", type=int, default=WATCHES_PER_USER,
                        help="watches one user may hold open through this gateway (beyond: 429)")
    parser.add_argument("--keep-node-summary", action="store_true",
                        help="watch pods from the start and keep the web console's per-node sums for ever (its "
                             "cluster view's first page after a start is then as fast as any); default: only "
                             "while a console shows them")


def _settings(args: argparse.Namespace) -> GatewaySettings:
    host, _, port = str(args.listen).rpartition(":")
    return GatewaySettings(host=host or "127.0.0.1", port=int(port), cert_file=args.tls_cert, key_file=args.tls_key,
                           admin_token_file=args.admin_token_file, client_ca_file=args.client_ca,
                           advertise_address=args.advertise_address, service_cidr=args.service_cidr,
                           advertise_node=args.advertise_node, watches_per_user=args.watches_per_user,
                           keep_node_summary=args.keep_node_summary)


def main(argv: list[str] | None = None) -> int:
    return actor_main("Shoal Kubernetes API gateway", _arguments, lambda a: GatewayActor(_settings(a)), argv)


if __name__ == "__main__":
    raise SystemExit(main())
