"""Checkers of Shoal's other promises, over what the workloads recorded:

- ``check_lost_writes``/``check_lost_creates``: no acknowledged write is lost (the final reads, taken after
  the faults are healed, show every acknowledged write or a later one);
- ``check_binds``: a pod (one uid) is bound once, to one node, and never unbound;
- ``check_watch_stream``: a watcher's events come in revision order, without duplicates, and every known
  change of what it watches inside its window appears, unless an ``Expired`` and the relist that followed
  covered it (the relist's snapshot stands for the changes up to its revision). Silence is a violation:
  the window runs to ``end_rv``, the revision every watcher must reach once the faults are healed;
- ``deployment_lag``: controllers converge: a Deployment's status and pods match its spec again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Violation:
    promise: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.promise}] {self.subject}: {self.detail}"


def check_lost_writes(acked: Mapping[str, Sequence[tuple[Any, int]]],
                      final: Mapping[str, tuple[Any, int]]) -> list[Violation]:
    """``acked``: per key, the ``(value, rv)`` of each acknowledged write; ``final``: per key, the read
    taken at the end. The final rv must be at least the last acknowledged one, and when it is an
    acknowledged rv, carry that write's value."""
    out: list[Violation] = []
    for key, writes in sorted(acked.items()):
        if not writes:
            continue
        by_rv = dict((rv, value) for value, rv in writes)
        last_rv = max(by_rv)
        if key not in final:
            out.append(Violation("no-lost-write", key, f"gone at the end; last acknowledged rv {last_rv}"))
            continue
        value, rv = final[key]
        if rv < last_rv:
            out.append(Violation("no-lost-write", key, f"final rv {rv} is older than the acknowledged write "
                                                       f"{by_rv[last_rv]!r} at rv {last_rv}"))
        elif rv in by_rv and by_rv[rv] != value:
            out.append(Violation("no-lost-write", key, f"final value {value!r} at rv {rv}, but the write "
                                                       f"acknowledged at rv {rv} was {by_rv[rv]!r}"))
    return out


def check_lost_creates(acked: Iterable[str], present: Iterable[str]) -> list[Violation]:
    missing = sorted(set(acked) - set(present))
    return [Violation("no-lost-write", name, "acknowledged create missing at the end") for name in missing]


@dataclass(frozen=True, slots=True)
class PodObservation:
    """A version of a pod seen by someone (a watcher, a read): its uid, its nodeName (None: unbound)."""

    pod: str
    uid: str
    node: str | None
    rv: int
    source: str = ""


def check_binds(observations: Iterable[PodObservation]) -> list[Violation]:
    """One uid: bound at most once, to one node, never unbound (nodeName is immutable once set)."""
    by_uid: dict[str, list[PodObservation]] = defaultdict(list)
    for observation in observations:
        by_uid[observation.uid].append(observation)
    out: list[Violation] = []
    for uid, seen in sorted(by_uid.items()):
        seen.sort(key=lambda o: o.rv)
        name = f"{seen[0].pod} (uid {uid})"
        nodes = sorted({o.node for o in seen if o.node})
        if len(nodes) > 1:
            where = [(o.rv, o.node, o.source) for o in seen if o.node]
            out.append(Violation("bound-once", name, f"bound to {len(nodes)} nodes {nodes}: {where[:6]}"))
        bound_at: PodObservation | None = None
        for o in seen:
            if o.node and bound_at is None:
                bound_at = o
            elif not o.node and bound_at is not None:
                out.append(Violation("bound-once", name, f"bound to {bound_at.node} at rv {bound_at.rv} "
                                                         f"({bound_at.source}), unbound at rv {o.rv} ({o.source})"))
                break
    return out


@dataclass(frozen=True, slots=True)
class WatchRecord:
    """What a watcher saw: ``start`` (watching from ``rv``), ``event`` (a change at ``rv`` of ``key``),
    ``expired`` (the server said the watcher's rv is too old), ``ended`` (the watch raised another error:
    loud, not silent), ``relist`` (a list at ``rv`` after either)."""

    kind: str
    rv: int = 0
    key: str | None = None
    value: Any = None
    type: str | None = None


def check_watch_stream(watcher: str, records: Sequence[WatchRecord], truth: Mapping[int, tuple[str, Any]],
                       end_rv: int) -> list[Violation]:
    """``truth``: every known change of what this watcher watches, rv -> (key, value or None when unknown)
    (acknowledged writes, and whatever any watcher or read saw); ``end_rv``: the stream must reach it."""
    out: list[Violation] = []
    if not records or records[0].kind != "start":
        return [Violation("watch-order", watcher, "the stream does not begin with its start revision")]
    start = records[0].rv
    cursor = start  # every change up to here is seen or covered
    seen: set[int] = set()
    covered: list[tuple[int, int]] = []
    expired = False
    for record in records[1:]:
        if record.kind == "event":
            if record.rv <= cursor:
                what = "duplicate" if record.rv in seen else "out of order"
                out.append(Violation("watch-order", watcher, f"{what}: rv {record.rv} ({record.key}) after rv "
                                                             f"{cursor}"))
                continue
            known = truth.get(record.rv)
            if known is not None and (known[0] != record.key or (
                    known[1] is not None and record.value is not None and known[1] != record.value)):
                out.append(Violation("watch-content", watcher, f"rv {record.rv}: saw {record.key}={record.value!r}, "
                                                               f"the change was {known[0]}={known[1]!r}"))
            seen.add(record.rv)
            cursor = record.rv
        elif record.kind in ("expired", "ended"):  # ended: the watch raised another error, and said so
            expired = True
        elif record.kind == "relist":
            if not expired:
                out.append(Violation("watch-order", watcher, f"relist at rv {record.rv} without an Expired"))
            if record.rv > cursor:
                covered.append((cursor, record.rv))
                cursor = record.rv
            expired = False
        else:
            raise ValueError(f"unknown watch record {record.kind!r}")
    missing = [rv for rv in sorted(truth) if start < rv <= end_rv and rv not in seen
               and not any(lo < rv <= hi for lo, hi in covered)]
    if missing:
        keys = [truth[rv][0] for rv in missing[:5]]
        out.append(Violation("watch-gap", watcher, f"{len(missing)} changes never delivered nor covered by a relist, "
                                                   f"e.g. rv {missing[:5]} of {keys}; last rv seen {cursor}, "
                                                   f"end rv {end_rv}"))
    return out


def deployment_lag(deployment: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> str | None:
    """What keeps a Deployment from having converged, or None when it has: its controller has seen its latest
    spec (``observedGeneration``), its status counts ``spec.replicas`` replicas, all updated and available,
    and exactly that many of its pods are live (not being deleted), bound, Running and Ready."""
    meta, spec, status = (deployment.get(k) or {} for k in ("metadata", "spec", "status"))
    want = int(spec.get("replicas", 1))
    if status.get("observedGeneration") != meta.get("generation"):
        return f"observedGeneration {status.get('observedGeneration')} of generation {meta.get('generation')}"
    counts = {k: int(status.get(k) or 0) for k in ("replicas", "updatedReplicas", "availableReplicas")}
    if any(v != want for v in counts.values()):
        return f"status {counts} for {want} replicas"
    live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    ready = [p for p in live if (p.get("spec") or {}).get("nodeName")
             and (p.get("status") or {}).get("phase") == "Running"
             and any(c.get("type") == "Ready" and c.get("status") == "True"
                     for c in (p.get("status") or {}).get("conditions") or ())]
    if len(live) != want or len(ready) != want:
        return f"{len(live)} live pods, {len(ready)} bound, Running and Ready, for {want} replicas"
    return None
