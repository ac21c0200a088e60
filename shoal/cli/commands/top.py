"""``shoal top pods``: the pods' CPU and memory use, as ``kubectl top pods`` prints it.

The usage comes from the pods' kubelets (``shoal.node.<N>.metrics``, ``runtime.node_metrics``): the pods
are listed, their nodes asked at once. A pod without a sample (not running, or its node does not answer)
is left out, as kubectl leaves out pods metrics-server has no sample for; the nodes that did not answer are
named on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from protocol.errors import ShoalError
from protocol.objects import name_of, namespace_of
from runtime.node_metrics import PodUsage, node_pod_usage
from shoal.cli.errors import UsageError
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["pods", "pod", "po"], help="pods (nodes are not measured yet)")
    parser.add_argument("name", nargs="?", default=None, help="one pod")
    parser.add_argument("-l", "--selector", default=None, help="label selector, e.g. app=web")
    parser.add_argument("--containers", action="store_true", help="one line per container")
    add_namespace_flags(parser)


def memory_text(value: int) -> str:
    return f"{value // (1024 * 1024)}Mi"


async def _run(session: Session, args: argparse.Namespace) -> int:
    if args.name and args.all_namespaces:
        raise UsageError("a pod name cannot be given with --all-namespaces")
    client = await session.client()
    namespace = None if args.all_namespaces else session.namespace
    pods = [p for p in (await client.list("Pod", namespace, label_selector=args.selector)).items
            if args.name is None or name_of(p) == args.name]
    nodes = sorted({str(p["spec"]["nodeName"]) for p in pods if (p.get("spec") or {}).get("nodeName")})
    answers = await asyncio.gather(*(node_pod_usage(client, n) for n in nodes), return_exceptions=True)
    usage: dict[tuple[str, str], PodUsage] = {}
    for node, answer in zip(nodes, answers, strict=True):
        if isinstance(answer, ShoalError):
            print(f"warning: no metrics from node {node}: {answer.message}", file=sys.stderr)
        elif isinstance(answer, BaseException):
            raise answer
        else:
            usage.update({(u.namespace, u.name): u for u in answer})
    rows = [(namespace_of(p) or "", name_of(p), usage[(namespace_of(p) or "", name_of(p))]) for p in pods
            if (namespace_of(p) or "", name_of(p)) in usage]
    if not rows:
        where = "in any namespace" if args.all_namespaces else f"in {session.namespace} namespace"
        print(f"No resources found {where}." if not args.name else f'pod "{args.name}" has no metrics yet',
              file=sys.stderr)
        return 0 if not args.name else 1
    header = (["NAMESPACE"] if args.all_namespaces else []) + ["POD"] + (["NAME"] if args.containers else []) + [
        "CPU(cores)", "MEMORY(bytes)"]
    lines = [header]
    for ns, name, sample in rows:
        lead = [ns] if args.all_namespaces else []
        if args.containers:
            lines.extend([*lead, name, c, f"{cpu}m", memory_text(mem)] for c, cpu, mem in sample.containers)
        else:
            lines.append([*lead, name, f"{sample.cpu_millicores}m", memory_text(sample.memory_bytes)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("   ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    return 0


COMMAND = Command(
    name="top", help="show the CPU and memory use of pods", configure=_configure, run=_run,
    epilog="examples:\n  shoal top pods\n  shoal top pods -l app=web --containers\n  shoal top pod web-0",
)
