"""The authorization step of every API request: what a kubelet's node-scoped request may do.

Requests on ``shoal.api.>`` are authorized by NATS permissions alone. Requests on a node's
``shoal.node.<N>.api.>`` (only node N's kubelet can publish there) go through node restriction
(``noderestriction.admit``): the answer is None (allowed as is), a guard the handler runs on the stored
object it reads (allowed if the pod is bound to N), or Forbidden.
"""

from __future__ import annotations

from typing import Any

from actors.api import noderestriction
from protocol.errors import Forbidden
from protocol.requests import ApiRequest
from protocol.subjects import Verb


def authorize(request: ApiRequest, body: dict[str, Any],
              referenced: noderestriction.Referenced | None = None) -> noderestriction.Guard | None:
    """``referenced`` answers the Node authorizer's question (does a pod bound to the node reference the
    object?) for reads of Secrets, ConfigMaps, PersistentVolumeClaims and ServiceAccounts."""
    node = request.node
    if node is None:
        return None
    if request.name is not None:
        return noderestriction.admit(node, request.verb, request.info, request.namespace, request.name,
                                     referenced)
    if request.verb == Verb.BIND:
        raise Forbidden("node-scoped subjects do not serve binds")
    obj = body.get("object")
    target = (obj.get("metadata") or {}).get("name") if isinstance(obj, dict) else None
    if request.verb != Verb.CREATE or not isinstance(target, str):
        raise Forbidden("node-scoped subjects serve only writes to the node's own objects")
    if noderestriction.admit(node, request.verb, request.info, request.namespace, target) is not None:
        raise Forbidden("creates through node-scoped subjects are limited to the node's own Node and Lease")
    return None
