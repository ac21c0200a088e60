"""``shoal top pods|nodes``: CPU and memory use, as ``kubectl top pods|nodes`` prints it.

The usage comes from the kubelets (``shoal.node.<N>.metrics``, ``runtime.node_metrics``), asked at once,
nothing stored. Pods: a pod without a sample (not running, or its node does not answer) is left out, as
kubectl leaves out pods metrics-server has no sample for; the nodes that did not answer are named on stderr.

Nodes: ``NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)`` (kubectl 1.32's columns). A node's usage is the
sum of its running pods' usage as its kubelet measures it (metrics-server reads the node's root cgroup,
which also counts what runs outside pods: the figures here leave that out); the percentages are of the
node's allocatable CPU and memory (``--show-capacity``: of its capacity), truncated as kubectl does. A node
whose kubelet does not answer is shown with ``<unknown>`` figures after the others, as kubectl shows a
node metrics-server has no sample for.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from protocol.errors import ShoalError
from protocol.objects import Obj, name_of, namespace_of
from protocol.quantity import QuantityError, cpu_millis, memory_bytes
from runtime.client import ApiClient
from runtime.node_metrics import PodUsage, node_total, usage_by_node
from shoal.cli.errors import CliError, UsageError
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.session import Session

PODS = ("pods", "pod", "po")
NODES = ("nodes", "node", "no")
UNKNOWN = "<unknown>"


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=[*PODS, *NODES], help="pods or nodes")
    parser.add_argument("name", nargs="?", default=None, help="one pod or node")
    parser.add_argument("-l", "--selector", default=None, help="label selector, e.g. app=web")
    parser.add_argument("--containers", action="store_true", help="pods: one line per container")
    parser.add_argument("--sort-by", choices=("cpu", "memory"), default=None,
                        help="biggest users first, by cpu or memory")
    parser.add_argument("--no-headers", action="store_true", help="leave the header line out")
    parser.add_argument("--show-capacity", action="store_true",
                        help="nodes: percentages of the capacity instead of the allocatable resources")
    add_namespace_flags(parser)


def memory_text(value: int) -> str:
    return f"{value // (1024 * 1024)}Mi"


def percent(used: int, available: int) -> str:
    """kubectl's ``%d%%`` of ``used / available * 100`` (truncated); ``<unknown>`` without a total."""
    return f"{int(used / available * 100)}%" if available > 0 else UNKNOWN


def print_table(header: list[str], rows: Sequence[list[str]], *, headers: bool = True) -> None:
    lines = ([header] if headers else []) + list(rows)
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    for line in lines:
        print("   ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


async def _top_pods(session: Session, client: ApiClient, args: argparse.Namespace) -> int:
    if args.show_capacity:
        raise UsageError("--show-capacity is for nodes: shoal top nodes --show-capacity")
    namespace = None if args.all_namespaces else session.namespace
    pods = [p for p in (await client.list("Pod", namespace, label_selector=args.selector)).items
            if args.name is None or name_of(p) == args.name]
    nodes = sorted({str(p["spec"]["nodeName"]) for p in pods if (p.get("spec") or {}).get("nodeName")})
    usage: dict[tuple[str, str], PodUsage] = {}
    for node, answer in (await usage_by_node(client, nodes)).items():
        if isinstance(answer, ShoalError):
            print(f"warning: no metrics from node {node}: {answer.message}", file=sys.stderr)
        else:
            usage.update({(u.namespace, u.name): u for u in answer})
    rows = [(namespace_of(p) or "", name_of(p), usage[(namespace_of(p) or "", name_of(p))]) for p in pods
            if (namespace_of(p) or "", name_of(p)) in usage]
    if not rows:
        where = "in any namespace" if args.all_namespaces else f"in {session.namespace} namespace"
        print(f"No resources found {where}." if not args.name else f'pod "{args.name}" has no metrics yet',
              file=sys.stderr)
        return 0 if not args.name else 1
    if args.sort_by:
        rows.sort(key=lambda r: -(r[2].cpu_millicores if args.sort_by == "cpu" else r[2].memory_bytes))
    header = (["NAMESPACE"] if args.all_namespaces else []) + ["POD"] + (["NAME"] if args.containers else []) + [
        "CPU(cores)", "MEMORY(bytes)"]
    lines: list[list[str]] = []
    for ns, name, sample in rows:
        lead = [ns] if args.all_namespaces else []
        if args.containers:
            lines.extend([*lead, name, c, f"{cpu}m", memory_text(mem)] for c, cpu, mem in sample.containers)
        else:
            lines.append([*lead, name, f"{sample.cpu_millicores}m", memory_text(sample.memory_bytes)])
    print_table(header, lines, headers=not args.no_headers)
    return 0


@dataclass(frozen=True, slots=True)
class NodeUsage:
    name: str
    cpu_millicores: int
    memory_bytes: int
    cpu_available: int
    memory_available: int


def available(node: Obj, *, capacity: bool) -> tuple[int, int]:
    """(millicores, bytes) of ``status.allocatable`` (or ``capacity``); 0 where absent or unreadable."""
    status = node.get("status") or {}
    figures = (status.get("capacity") if capacity else status.get("allocatable") or status.get("capacity")) or {}
    out = []
    for key, parse in (("cpu", cpu_millis), ("memory", memory_bytes)):
        try:
            out.append(parse(figures[key]) if key in figures else 0)
        except QuantityError:
            out.append(0)
    return out[0], out[1]


def node_usage(node: Obj, pods: list[PodUsage], *, capacity: bool) -> NodeUsage:
    cpu, memory = available(node, capacity=capacity)
    return NodeUsage(name_of(node), *node_total(pods), cpu, memory)


def node_row(u: NodeUsage) -> list[str]:
    return [u.name, f"{u.cpu_millicores}m", percent(u.cpu_millicores, u.cpu_available),
            memory_text(u.memory_bytes), percent(u.memory_bytes, u.memory_available)]


async def _top_nodes(session: Session, client: ApiClient, args: argparse.Namespace) -> int:
    if args.containers:
        raise UsageError("--containers is for pods: shoal top pods --containers")
    if args.all_namespaces or session.namespace_given:
        raise UsageError("nodes belong to no namespace: leave out -n/-A")
    nodes = [await client.get("Node", args.name)] if args.name else \
        list((await client.list("Node", None, label_selector=args.selector)).items)
    if not nodes:
        print("No resources found", file=sys.stderr)
        return 0
    answers = await usage_by_node(client, [name_of(n) for n in nodes])
    measured = [node_usage(n, answer, capacity=args.show_capacity) for n in nodes
                if not isinstance(answer := answers[name_of(n)], ShoalError)]
    missing = [name_of(n) for n in nodes if isinstance(answers[name_of(n)], ShoalError)]
    if args.name and missing:
        raise CliError(f"metrics not available yet for node {args.name}: {answers[args.name]}")
    if args.sort_by:
        measured.sort(key=lambda u: -(u.cpu_millicores if args.sort_by == "cpu" else u.memory_bytes))
    rows = [node_row(u) for u in measured] + [[name, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN] for name in missing]
    print_table(["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"], rows, headers=not args.no_headers)
    return 0


async def _run(session: Session, args: argparse.Namespace) -> int:
    if args.name and args.selector:
        raise UsageError("a name and -l/--selector cannot be given together")
    if args.what in NODES:
        return await _top_nodes(session, await session.client(), args)
    if args.name and args.all_namespaces:
        raise UsageError("a pod name cannot be given with --all-namespaces")
    return await _top_pods(session, await session.client(), args)


COMMAND = Command(
    name="top", help="show the CPU and memory use of pods or nodes", configure=_configure, run=_run,
    epilog="examples:\n  shoal top nodes\n  shoal top node node-1 --show-capacity\n  shoal top pods\n"
           "  shoal top pods -l app=web --containers --sort-by cpu\n  shoal top pod web-0",
)
