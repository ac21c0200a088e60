"""The soak: ``python -m tests.chaos.soak --minutes 30 --rate 500 --seed N`` (as root: it builds the
three-VM cluster of ``tests.multivm`` in network namespaces, and removes it afterwards).

A fault drawn at random from ``tests.chaos.faults.FaultPlan`` every ``--every`` seconds (kill -9 and
restart, SIGSTOP/SIGCONT, partitions, one-way partitions, packet loss; on NATS servers, API actors, the
schedulers, controller managers and kubelets; opt-in: bridges, clock jumps, a full disk; ``--combine``: two at once),
held 5-20 s, while CAS clients, watchers and pod creators
record their histories; then every checker. The seed is printed first: the same seed draws the same
faults. The report is printed and written as JSON (``--out``); exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.chaos.faults import ALL_KINDS, KINDS, FaultPlan
from tests.chaos.run import Report, Schedule, chaos_run
from tests.multivm.cluster import build
from tests.multivm.netns import Network, netns_unavailable_reason


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=500.0, help="CAS operations per second, all clients")
    parser.add_argument("--seed", type=int, default=None, help="draws of faults and operations (random if absent)")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between the starts of two faults")
    parser.add_argument("--keys", type=int, default=8, help="registers in use at a time")
    parser.add_argument("--epoch", type=float, default=60.0, help="seconds before the clients move to new keys")
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"fault kinds to draw from, comma-separated, among {','.join(ALL_KINDS)}")
    parser.add_argument("--combine", type=float, default=0.0,
                        help="share of the draws that are two faults at once (a network one and another)")
    parser.add_argument("--store-mb", type=int, default=1024,
                        help="each NATS store is a tmpfs of this size (the disk-full fault fills one)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON report")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1, 1_000_000)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(ALL_KINDS))
    if unknown or not kinds:
        parser.error(f"unknown fault kinds {unknown}; choose among {', '.join(ALL_KINDS)}")
    print(f"soak seed {seed} (--seed {seed} replays the same draws)", flush=True)
    reason = netns_unavailable_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    rng = random.Random(seed)
    root = Path(tempfile.gettempdir()) / "shoal-soak"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    net = Network()
    cluster = None
    report: Report | None = None
    try:
        net.create()
        net.enter_client()
        started = time.monotonic()
        cluster = build(net, root, store_limit_mb=args.store_mb)
        print(f"cluster up in {time.monotonic() - started:.1f} s (logs in {root})", flush=True)
        plan = FaultPlan(cluster, seed, kinds=kinds, combine=args.combine)
        workers = max(4, min(32, int(args.rate // 25)))
        schedule = Schedule(lambda n: plan.draw(), every=args.every, hold=lambda n: rng.uniform(5.0, 20.0))
        report = asyncio.run(chaos_run(
            cluster, seed=seed, duration=args.minutes * 60, rate=args.rate, schedule=schedule, keys=args.keys,
            workers=workers, pods=args.pods, epoch_s=args.epoch, dump=root / f"soak-history-{seed}.json",
            log=lambda line: print(line, flush=True)))
    finally:
        if cluster is not None:
            cluster.stop()
        net.destroy()
    print(report.summary())
    if args.out is not None:
        args.out.write_text(report.to_json())
    return 1 if report.violations or report.unknown_keys else 0


if __name__ == "__main__":
    raise SystemExit(main())
