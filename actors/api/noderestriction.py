"""Node restriction: what a kubelet may do through its node-scoped subjects ``shoal.node.<N>.api.>``.

Only node N's kubelet can publish there (NATS permissions), so the subject names the caller. A request
is allowed only when its target belongs to node N: a pod bound to N (as stored, not as sent), the Node
named N, or the Lease ``kube-node-lease/N``; Events may be recorded by any node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from protocol.errors import Forbidden, NotFound
from protocol.kinds import KindInfo
from protocol.objects import Obj
from protocol.subjects import Verb

LEASE_NAMESPACE = "kube-node-lease"


async def check(node: str, verb: Verb, info: KindInfo, namespace: str | None, name: str | None,
                load: Callable[[], Awaitable[Obj]]) -> None:
    """Raise Forbidden unless node ``node`` may apply ``verb`` to the object; ``load`` reads it as stored."""
    if info.kind == "Event" and verb in (Verb.CREATE, Verb.UPDATE, Verb.PATCH, Verb.GET):
        return
    if info.kind == "Node" and name == node:
        return
    if info.kind == "Lease" and namespace == LEASE_NAMESPACE and name == node:
        return
    if info.kind == "Pod" and name and verb in (Verb.GET, Verb.STATUS, Verb.PATCH, Verb.DELETE):
        try:
            pod = await load()
        except NotFound:
            raise Forbidden(f"node {node} may not act on pod {namespace}/{name}: no such pod") from None
        if (pod.get("spec") or {}).get("nodeName") == node:
            return
        raise Forbidden(f"node {node} may only act on pods bound to it; {namespace}/{name} is not")
    raise Forbidden(f"node {node} may not {verb} {info.plural} {namespace or ''}/{name or ''} through its "
                    "node-scoped subjects")
