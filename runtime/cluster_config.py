"""The configuration of one nats-server of a Shoal NATS cluster: JetStream clustered, TLS, users.

Pure rendering on top of ``runtime.nats_server.NatsServerConfig`` (server name, listen address,
JetStream with ``sync_interval: always``); the cluster block, TLS and authorization go in its
``extra``. Used by ``deploy/install-vm.sh`` and the multi-VM tests::

    python -m runtime.cluster_config --name shoal-1 --peers 10.0.0.11,10.0.0.12,10.0.0.13 \\
        --state-dir /var/lib/shoal/nats --tls-dir /etc/shoal/tls --secrets-dir /etc/shoal > /etc/shoal/nats-server.conf
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.nats_server import NatsServerConfig

CLIENT_PORT = 4222
CLUSTER_PORT = 6222
MONITOR_PORT = 8222
CLUSTER_NAME = "shoal"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files as written by ``deploy/make-certs.sh``: the CA, and this server's cert and key."""

    ca: str
    cert: str
    key: str

    @classmethod
    def in_dir(cls, directory: str | Path, server_name: str) -> TlsFiles:
        d = Path(directory)
        return cls(str(d / "ca.pem"), str(d / f"{server_name}.pem"), str(d / f"{server_name}-key.pem"))


def _tls_block(tls: TlsFiles, *, verify: bool, indent: str) -> str:
    lines = [f"{indent}tls {{", f'{indent}  cert_file: "{tls.cert}"', f'{indent}  key_file: "{tls.key}"',
             f'{indent}  ca_file: "{tls.ca}"', f"{indent}  timeout: 3"]
    if verify:
        lines.append(f"{indent}  verify: true")
    return "\n".join([*lines, f"{indent}}}"])


def tls_block(tls: TlsFiles, *, verify: bool = False, indent: str = "") -> str:
    """A ``tls {}`` block: for the client port (``verify`` off: clients authenticate by user) or routes."""
    return _tls_block(tls, verify=verify, indent=indent)


def route_urls(peers: Sequence[str], route_password: str | None, port: int = CLUSTER_PORT) -> list[str]:
    auth = f"route:{route_password}@" if route_password else ""
    return [f"nats-route://{auth}{_hostport(peer, port)}" for peer in peers]


def client_urls(peers: Sequence[str], *, tls: bool, port: int = CLIENT_PORT) -> list[str]:
    scheme = "tls" if tls else "nats"
    return [f"{scheme}://{_hostport(peer, port)}" for peer in peers]


def _hostport(peer: str, port: int) -> str:
    return peer if ":" in peer else f"{peer}:{port}"


def render_server(*, name: str, peers: Sequence[str], state_dir: Path, listen_host: str = "0.0.0.0",
                  client_port: int = CLIENT_PORT, cluster_port: int = CLUSTER_PORT,
                  monitor: str | None = f"127.0.0.1:{MONITOR_PORT}", tls: TlsFiles | None = None,
                  authorization: str = "", auth_include: str | None = None, route_password: str | None = None,
                  cluster_name: str = CLUSTER_NAME, ping_interval: str = "2s", ping_max: int = 3) -> str:
    """One server's config. ``peers`` are every server's route address (host or host:port), this one's
    included (nats-server skips the route to itself), so the three servers can share one list."""
    # find dead peers and clients within seconds (defaults: 2 min): a partitioned server otherwise keeps
    # its routes, and the queue-group members behind them, for minutes
    extra: list[str] = [f'ping_interval: "{ping_interval}"', f"ping_max: {ping_max}"]
    if monitor:
        extra.append(f'http: "{monitor}"')
    if tls is not None:
        extra.append(_tls_block(tls, verify=False, indent=""))
    cluster = ["cluster {", f'  name: "{cluster_name}"', f'  listen: "{listen_host}:{cluster_port}"']
    if route_password:
        cluster.append(f'  authorization {{ user: "route", password: "{route_password}", timeout: 3 }}')
    routes = ", ".join(f'"{u}"' for u in route_urls(peers, route_password, cluster_port))
    cluster += [f"  routes: [{routes}]", "  connect_retries: -1"]
    if tls is not None:
        cluster.append(_tls_block(tls, verify=True, indent="  "))
    cluster.append("}")
    extra.append("\n".join(cluster))
    if auth_include:
        extra.append(f'include "{auth_include}"')
    elif authorization:
        extra.append(authorization.rstrip("\n"))
    config = NatsServerConfig(state_dir=state_dir, host=listen_host, port=client_port, server_name=name,
                              sync_interval="always", extra="\n".join(extra))
    return config.render()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.cluster_config",
                                     description="Render one nats-server config of a Shoal NATS cluster")
    parser.add_argument("--name", required=True, help="this server's name (unique in the cluster)")
    parser.add_argument("--peers", required=True, help="comma-separated route hosts of all servers")
    parser.add_argument("--state-dir", type=Path, default=Path("/var/lib/shoal/nats"))
    parser.add_argument("--listen", default="0.0.0.0")
    parser.add_argument("--monitor", default=f"127.0.0.1:{MONITOR_PORT}", help="host:port, or '' for none")
    parser.add_argument("--tls-dir", default=None, help="directory with ca.pem, <name>.pem, <name>-key.pem")
    parser.add_argument("--secrets-dir", type=Path, default=None,
                        help="directory with secrets.json and nats-auth.conf (runtime.nats_security)")
    args = parser.parse_args(argv)
    route_password = None
    auth_include = None
    if args.secrets_dir is not None:
        secrets = json.loads((args.secrets_dir / "secrets.json").read_text())
        route_password = secrets["passwords"]["route"]
        auth_include = "nats-auth.conf"  # resolved next to the config: write it into --secrets-dir
    sys.stdout.write(render_server(
        name=args.name, peers=[p.strip() for p in args.peers.split(",") if p.strip()], state_dir=args.state_dir,
        listen_host=args.listen, monitor=args.monitor or None,
        tls=TlsFiles.in_dir(args.tls_dir, args.name) if args.tls_dir else None,
        auth_include=auth_include, route_password=route_password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
