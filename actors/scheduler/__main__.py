"""``python -m actors.scheduler``: run one scheduler (several may run; leader election picks one)."""

from __future__ import annotations

import argparse

from actors.scheduler.actor import SchedulerActor, SchedulerSettings
from runtime.actor import actor_main


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-leader-elect", action="store_true",
                        help="schedule without electing a leader (a single scheduler, or tests)")
    parser.add_argument("--bind-concurrency", type=int, default=512,
                        help="pods decided whose bind is not answered yet, at most")
    parser.add_argument("--bind-batch", type=int, default=128, help="bindings per batched bind request")
    parser.add_argument("--percentage-of-nodes-to-score", type=int, default=0,
                        help="share of nodes to find feasible before scoring; 0 = adaptive, as Kubernetes")
    parser.add_argument("--unschedulable-timeout", type=float, default=60.0,
                        help="seconds before an unschedulable pod is retried without any cluster change")
    parser.add_argument("--scheduled-events", action=argparse.BooleanOptionalAction, default=True,
                        help="record a Scheduled event for every bound pod, as kube-scheduler does "
                             "(default on; --no-scheduled-events saves one event write per pod)")


def build(args: argparse.Namespace) -> SchedulerActor:
    return SchedulerActor(SchedulerSettings(
        leader_elect=not args.no_leader_elect, bind_concurrency=args.bind_concurrency, bind_batch=args.bind_batch,
        percentage_of_nodes_to_score=args.percentage_of_nodes_to_score,
        unschedulable_timeout=args.unschedulable_timeout, scheduled_events=args.scheduled_events))


def main(argv: list[str] | None = None) -> int:
    return actor_main("Shoal scheduler", _arguments, build, argv)


if __name__ == "__main__":
    raise SystemExit(main())
