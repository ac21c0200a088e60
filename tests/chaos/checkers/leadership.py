"""One leader at a time: what the leader-elected actors (schedulers, controller managers) say of themselves
and what their Lease shows, checked against ``runtime/leader.py``'s rules.

- ``check_one_leader``: each actor's own claims (``became leader`` ... ``lost leadership``, its death or its
  stop), minus the windows it was frozen (SIGSTOP: a stopped process does nothing), must not overlap
  another identity's claims on the same lease by more than ``allowed_overlap`` seconds;
- ``check_lease_history``: the Lease's revisions as a watch saw them: ``leaseTransitions`` never goes
  back and grows on every change of holder; a holder is replaced without a release only after its last
  renewal is ``lease_duration`` old (the candidate waits that long after *seeing* the last renewal;
  ``renewTime`` is each writer's wall clock, the same machine's, so the check holds unless clocks were
  moved).

Times are seconds on one clock (the recorder's); ``skew`` absorbs how late the recorder reads them.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tests.chaos.checkers.promises import Violation


@dataclass(frozen=True, slots=True)
class LeaderClaim:
    """``identity`` (run by ``process``) acted as leader of ``lease`` from ``start`` to ``end``, except while
    frozen (``frozen``: (from, to) windows of SIGSTOP)."""

    lease: str
    identity: str
    process: str
    start: float
    end: float
    frozen: tuple[tuple[float, float], ...] = ()

    def acting(self) -> list[tuple[float, float]]:
        """The claim's interval minus its frozen windows."""
        segments = [(self.start, self.end)]
        for lo, hi in sorted(self.frozen):
            cut: list[tuple[float, float]] = []
            for a, b in segments:
                if hi <= a or lo >= b:
                    cut.append((a, b))
                    continue
                if a < lo:
                    cut.append((a, lo))
                if hi < b:
                    cut.append((hi, b))
            segments = cut
        return [(a, b) for a, b in segments if b > a]


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """A revision of a Lease seen by a watch (or a read): ``renew_time`` is its ``spec.renewTime`` as
    seconds (the writer's wall clock), ``holder`` its ``spec.holderIdentity`` ("" once released);
    ``gap``: seen by a list (the first one, or a relist after ``Expired``), so the revision before it in rv
    order may be unseen: only "transitions never go back" is checked across it."""

    lease: str
    rv: int
    holder: str
    transitions: int
    renew_time: float
    gap: bool = False


def _overlap(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    """The total length two sets of segments share, and where the first shared stretch begins and ends."""
    total, first = 0.0, (0.0, 0.0)
    for a0, a1 in a:
        for b0, b1 in b:
            lo, hi = max(a0, b0), min(a1, b1)
            if hi > lo:
                if total == 0.0:
                    first = (lo, hi)
                total += hi - lo
    return total, first[0], first[1]


def check_one_leader(claims: Iterable[LeaderClaim], allowed_overlap: float) -> list[Violation]:
    """No two identities act as leader of one lease at once for longer than ``allowed_overlap`` seconds."""
    if allowed_overlap < 0:
        raise ValueError(f"allowed_overlap must be >= 0, not {allowed_overlap}")
    by_lease: dict[str, list[LeaderClaim]] = defaultdict(list)
    for claim in claims:
        if claim.end < claim.start:
            raise ValueError(f"claim of {claim.identity} ends ({claim.end}) before it starts ({claim.start})")
        by_lease[claim.lease].append(claim)
    out: list[Violation] = []
    for lease, held in sorted(by_lease.items()):
        held.sort(key=lambda c: (c.start, c.identity))
        for i, first in enumerate(held):
            for second in held[i + 1:]:
                if second.identity == first.identity:
                    continue
                total, lo, hi = _overlap(first.acting(), second.acting())
                if total > allowed_overlap:
                    out.append(Violation(
                        "one-leader", lease,
                        f"{first.identity} ({first.process}) and {second.identity} ({second.process}) both acted "
                        f"as leader for {total:.2f} s (allowed {allowed_overlap:.2f} s), first from {lo:.2f} to "
                        f"{hi:.2f}"))
    return out


def check_lease_history(records: Iterable[LeaseRecord], lease_duration: float, skew: float) -> list[Violation]:
    """Each lease's revisions in rv order: transitions never decrease and grow when the holder changes to
    another identity; a takeover (a new holder without a release in between) comes ``lease_duration``
    (less ``skew``) after the previous holder's last renewal."""
    by_lease: dict[str, dict[int, LeaseRecord]] = defaultdict(dict)
    for record in records:
        by_lease[record.lease].setdefault(record.rv, record)
    out: list[Violation] = []
    for lease, revisions in sorted(by_lease.items()):
        ordered = [revisions[rv] for rv in sorted(revisions)]
        for before, after in itertools.pairwise(ordered):
            if after.transitions < before.transitions:
                out.append(Violation("lease-history", lease, f"leaseTransitions went back from "
                                                             f"{before.transitions} (rv {before.rv}) to "
                                                             f"{after.transitions} (rv {after.rv})"))
            if after.gap:
                continue
            changed = after.holder not in ("", before.holder)
            if changed and after.transitions <= before.transitions:
                out.append(Violation("lease-history", lease, f"holder changed from {before.holder!r} to "
                                                             f"{after.holder!r} at rv {after.rv} without "
                                                             f"leaseTransitions growing ({after.transitions})"))
            if changed and before.holder:
                waited = after.renew_time - before.renew_time
                if waited < lease_duration - skew:
                    out.append(Violation(
                        "one-leader", lease,
                        f"{after.holder!r} took the lease over at rv {after.rv} {waited:.2f} s after "
                        f"{before.holder!r}'s last renewal (rv {before.rv}); the lease lasts {lease_duration} s"))
    return out
