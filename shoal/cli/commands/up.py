"""``shoal up``: run a whole single-machine cluster in the foreground (see ``shoal.up``)."""

from __future__ import annotations

import argparse
import os

from shoal.cli.registry import Command
from shoal.cli.session import Session
from shoal.up import UpOptions, default_state_dir, run_cluster


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", default=None, metavar="DIR",
                        help="where the datastore and logs live (default $SHOAL_STATE_DIR or "
                             f"{default_state_dir()})")
    parser.add_argument("--host", default="127.0.0.1", help="address NATS listens on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4222, help="NATS client port (default 4222)")
    parser.add_argument("--log-format", choices=("console", "json"),
                        default=os.environ.get("SHOAL_LOG_FORMAT", "console"),
                        help="log format of the components")
    parser.add_argument("--log-level", default=os.environ.get("SHOAL_LOG_LEVEL", "info"),
                        help="log level of the components (default info)")
    parser.add_argument("--gateway", default="127.0.0.1:6443", metavar="HOST:PORT",
                        help="where the Kubernetes API gateway serves HTTPS for kubectl (default 127.0.0.1:6443; "
                             "'' for none)")
    parser.add_argument("--kubeconfig", default=None, metavar="PATH",
                        help="kubeconfig to merge the 'shoal' context into (default $KUBECONFIG or ~/.kube/config; "
                             "'' to leave kubeconfigs alone)")
    parser.add_argument("-a", "--attach", action="store_true",
                        help="also print the components' logs here, prefixed by name (they always go to "
                             "<state-dir>/logs/<component>.log)")


async def _run(session: Session, args: argparse.Namespace) -> int:
    return await run_cluster(UpOptions(
        state_dir=args.state_dir, host=args.host, port=args.port, log_format=args.log_format,
        log_level=args.log_level, attach=args.attach, gateway=args.gateway, kubeconfig=args.kubeconfig,
    ))


COMMAND = Command(
    name="up", help="run a single-machine cluster in the foreground (Ctrl-C stops it)", configure=_configure,
    run=_run,
    epilog="examples:\n  shoal up\n  shoal up --port 4333 --state-dir /tmp/shoal\n"
           "then, in another terminal:\n  shoal get nodes\n"
           "(credentials: <state-dir>/context.json, found by itself for the default state directory;\n"
           "else export SHOAL_CONTEXT=<state-dir>/context.json)",
)
