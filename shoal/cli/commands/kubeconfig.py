"""``shoal kubeconfig``: print the kubeconfig for the cluster ``shoal up`` runs from a state directory (its
gateway's CA, address and admin token), for kubectl and the Kubernetes client libraries."""

from __future__ import annotations

import argparse

import yaml

from shoal import kubeconfig
from shoal.cli.errors import CliError
from shoal.cli.registry import Command
from shoal.cli.session import Session
from shoal.up import UpOptions, default_state_dir, resolve_state_dir


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", default=None, metavar="DIR",
                        help=f"the cluster's state directory (default $SHOAL_STATE_DIR or {default_state_dir()})")
    parser.add_argument("--gateway", default="127.0.0.1:6443", metavar="HOST:PORT",
                        help="the gateway's address, as given to `shoal up --gateway` (default 127.0.0.1:6443)")


async def _run(session: Session, args: argparse.Namespace) -> int:
    options = UpOptions(state_dir=args.state_dir, gateway=args.gateway)
    creds = kubeconfig.Credentials(resolve_state_dir(options) / "gateway")
    if not creds.token_file.exists():
        raise CliError(f"no gateway credentials in {creds.directory}: start the cluster once with `shoal up`")
    print(yaml.safe_dump(kubeconfig.kubeconfig(options.gateway_url, creds), sort_keys=False), end="")
    return 0


COMMAND = Command(name="kubeconfig", help="print a kubeconfig for kubectl to use the cluster of `shoal up`",
                  configure=_configure, run=_run,
                  epilog="example:\n  shoal kubeconfig > /tmp/shoal.kubeconfig; "
                         "KUBECONFIG=/tmp/shoal.kubeconfig kubectl get nodes")
