"""Lease (coordination.k8s.io/v1): leader election and node heartbeats."""

from __future__ import annotations

from protocol.fielderrors import Errors
from protocol.kinds.strategy import AGE, NAME, Column, Field, KindInfo, Strategy, get_path, undescribed
from protocol.objects import Obj

INFO = KindInfo("Lease", "coordination.k8s.io/v1", "leases", "lease")


def _validate(e: Errors, obj: Obj) -> None:
    spec = obj.get("spec")
    if spec is not None and e.check(spec, "spec", dict):
        e.check(spec.get("holderIdentity"), "spec.holderIdentity", str)
        e.integer(spec, "leaseDurationSeconds", "spec.leaseDurationSeconds", 1)
        e.integer(spec, "leaseTransitions", "spec.leaseTransitions", 0)
        e.check(spec.get("renewTime"), "spec.renewTime", str)
        e.check(spec.get("acquireTime"), "spec.acquireTime", str)


STRATEGY = Strategy(
    INFO, description="A lease held by one holder for a while: leader election, node heartbeats.",
    schema=(Field("spec", "object", "", fields=(
        Field("holderIdentity", "string", "Who holds the lease."),
        Field("leaseDurationSeconds", "integer", "How long a holder may go without renewing."),
        Field("leaseTransitions", "integer", "How often the lease changed hands."),
        Field("acquireTime", "string", "When the holder acquired it (RFC 3339)."),
        Field("renewTime", "string", "When the holder last renewed it (RFC 3339)."),
        *undescribed("preferredHolder:string", "strategy:string"))),),
    columns=(NAME, Column("HOLDER", lambda o, now: str(get_path(o, "spec", "holderIdentity") or "")), AGE),
    validate=_validate,
)
