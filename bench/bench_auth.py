"""API latency with ``shoal up``'s authentication on vs off, in the same run (issue 18, item 1).

Two clusters at once, each a nats-server and an API actor: one as ``shoal up`` runs it now (NATS users
and per-identity permissions, private inboxes; the client is the ``cli`` identity), one open as before.
Get and create of ConfigMaps are measured in interleaved rounds so the machine's drift hits both alike.
What authentication costs per request is nats-server's permission check on each publish and subscribe
(cached per subject) and nothing in the API actor; the connection handshake is paid once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from bench.common import cluster, get_create_a_b, stop_on_signals


async def main_async(n: int, rounds: int) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        clusters = {tag: await stack.enter_async_context(cluster(auth=tag == "auth")) for tag in ("auth", "open")}
        return await get_create_a_b({tag: c.client for tag, c in clusters.items()}, n, rounds)


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="gets and creates per cluster")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    result = asyncio.run(main_async(args.n, args.rounds))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
