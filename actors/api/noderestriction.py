"""Node restriction: what a kubelet may do through its node-scoped subjects ``shoal.node.<N>.api.>``.

Only node N's kubelet can publish there (NATS permissions), so the subject names the caller. A request
is allowed only when its target belongs to node N: a pod bound to N (as stored, not as sent), the Node
named N, or the Lease ``kube-node-lease/N``; Events may be recorded by any node. A token (``Verb.TOKEN`` on a
ServiceAccount, Kubernetes' TokenRequest) is issued only bound to a pod bound to N, and only for that pod's own
ServiceAccount (``actors/api/tokens.py`` runs the guard on the bound pod).

Reads of Secrets, ConfigMaps, PersistentVolumeClaims and ServiceAccounts (Kubernetes' Node authorizer):
a ``get`` is allowed only when a pod bound to N references the object (``protocol.podrefs``, answered
by ``actors/api/noderefs.py`` from the watch cache), and of a PersistentVolume when such a claim is bound
to it; NATS permissions deny kubelets the general read subjects of these kinds, so this is their only
way in.
"""

from __future__ import annotations

from collections.abc import Callable

from protocol.errors import Forbidden
from protocol.kinds import KindInfo
from protocol.objects import Obj
from protocol.podrefs import NODE_READABLE_KINDS
from protocol.subjects import Verb

LEASE_NAMESPACE = "kube-node-lease"


Guard = Callable[[Obj], None]
"""Raises Forbidden unless the object as stored belongs to the node."""

Referenced = Callable[[str, str, str | None, str], bool]
"""(node, kind, namespace, name) -> does a pod bound to the node reference the object?"""


def admit(node: str, verb: Verb, info: KindInfo, namespace: str | None, name: str | None,
          referenced: Referenced | None = None) -> Guard | None:
    """Whether node ``node`` may apply ``verb`` to the object: None when the subject alone allows it, a guard
    when it depends on the stored object (a pod must be bound to the node), Forbidden otherwise.

    The caller runs the guard on the very object it reads for the request (for a write, the one its
    compare-and-swap replaces), so the check and the write see the same version: no extra read, and no
    window in which the pod could be replaced by one bound elsewhere."""
    if info.kind == "Event" and verb in (Verb.CREATE, Verb.UPDATE, Verb.PATCH, Verb.GET):
        return None
    if info.kind == "Node" and name == node:
        return None
    if info.kind == "Lease" and namespace == LEASE_NAMESPACE and name == node:
        return None
    if info.kind == "Pod" and name and verb in (Verb.GET, Verb.STATUS, Verb.PATCH, Verb.DELETE):
        return bound_to(node, namespace, name)
    if info.kind == "ServiceAccount" and name and verb == Verb.TOKEN:
        return pod_bound_to(node)
    if info.kind in NODE_READABLE_KINDS and name and verb == Verb.GET:
        if referenced is not None and referenced(node, info.kind, namespace, name):
            return None
        raise Forbidden(f"node {node} may not get {info.plural} {namespace or ''}/{name}: no pod bound to it "
                        "references it")
    raise Forbidden(f"node {node} may not {verb} {info.plural} {namespace or ''}/{name or ''} through its "
                    "node-scoped subjects")


def pod_bound_to(node: str) -> Guard:
    """The guard of a node's TokenRequest, run on the pod the token is to be bound to."""
    def guard(pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName") != node:
            m = pod.get("metadata") or {}
            raise Forbidden(f"node {node} may only ask for tokens bound to pods bound to it; "
                            f"{m.get('namespace')}/{m.get('name')} is not")

    return guard


def bound_to(node: str, namespace: str | None, name: str) -> Guard:
    def guard(pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName") != node:
            raise Forbidden(f"node {node} may only act on pods bound to it; {namespace}/{name} is not")

    return guard
