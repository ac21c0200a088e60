"""Pure decision of the cloud node controller: a node whose machine is gone for good is deleted.

The provider answers whether the machine behind a node still exists (``instance_exists``); only a
definite "no" deletes the node (Kubernetes' cloud node lifecycle controller). A node that still has a
machine is looked at again after the resync period. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.objects import Obj, name_of


@dataclass(frozen=True, slots=True)
class DeleteNode:
    name: str
    message: str
    """The Event's message: why the node goes."""


def plan(node: Obj, instance_exists: bool) -> DeleteNode | None:
    """Delete ``node`` when the provider says its machine no longer exists."""
    if instance_exists:
        return None
    name = name_of(node)
    return DeleteNode(name, f"Deleting node {name} because it does not exist in the cloud provider")
