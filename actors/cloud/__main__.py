"""``python -m actors.cloud --cloud-provider local --state-dir DIR``: the cloud controller manager."""

from __future__ import annotations

import argparse

from actors.cloud.manager import CloudControllerManager, build_provider
from runtime.actor import actor_main


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cloud-provider", default="local")
    parser.add_argument("--state-dir", default=".", help="where the local provider keeps its inventory")
    parser.add_argument("--no-leader-elect", action="store_true")


def main(argv: list[str] | None = None) -> int:
    return actor_main("Shoal cloud controller manager", _arguments, lambda a: CloudControllerManager(
        build_provider(a.cloud_provider, a.state_dir), leader_elect=not a.no_leader_elect), argv)


if __name__ == "__main__":
    raise SystemExit(main())
