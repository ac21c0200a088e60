"""Pure decisions of the cloud service controller: load balancers for ``type: LoadBalancer`` Services.

A LoadBalancer Service gets the finalizer ``LB_FINALIZER`` first (so its deletion waits for the load
balancer to go), then a provider load balancer, whose addresses go to ``status.loadBalancer.ingress``.
A Service being deleted, or no longer of type LoadBalancer, that still has the finalizer has its load
balancer deleted and the finalizer removed (with a resourceVersion precondition); one that changed type
also has its ingress cleared. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.cloud.provider import LoadBalancer
from protocol.objects import Obj, is_deleting, meta

LB_FINALIZER = "service.kubernetes.io/load-balancer-cleanup"


@dataclass(frozen=True, slots=True)
class EnsureLoadBalancer:
    add_finalizer: tuple[str, ...] | None
    """The Service's finalizers with ``LB_FINALIZER`` added, when it lacks it (None when it has it)."""


@dataclass(frozen=True, slots=True)
class DeleteLoadBalancer:
    finalizers: tuple[str, ...]
    """The finalizers to leave once the load balancer is gone (``LB_FINALIZER`` removed)."""
    resource_version: str
    clear_status: bool
    """The Service stays (its type changed): its ``status.loadBalancer`` is emptied."""


Action = EnsureLoadBalancer | DeleteLoadBalancer


def is_load_balancer(service: Obj) -> bool:
    return (service.get("spec") or {}).get("type") == "LoadBalancer"


def plan(service: Obj) -> Action | None:
    """Ensure the load balancer of a live LoadBalancer Service; delete the one a Service no longer needs."""
    finalizers = tuple(meta(service).get("finalizers") or [])
    is_lb = is_load_balancer(service)
    if is_deleting(service) or not is_lb:
        if LB_FINALIZER not in finalizers:
            return None
        return DeleteLoadBalancer(tuple(f for f in finalizers if f != LB_FINALIZER),
                                  str(meta(service).get("resourceVersion") or ""), clear_status=not is_lb)
    return EnsureLoadBalancer(None if LB_FINALIZER in finalizers else (*finalizers, LB_FINALIZER))


def ingress_status(service: Obj, lb: LoadBalancer) -> Obj | None:
    """The status patch publishing ``lb``'s addresses, or None when the Service already shows them."""
    ingress = [{"ip": ip} for ip in lb.ingress_ips]
    if ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") == ingress:
        return None
    return {"status": {"loadBalancer": {"ingress": ingress}}}
