"""Pure decisions of the rootca controller (Kubernetes' root-ca-cert-publisher): every active namespace has
the ConfigMap ``kube-root-ca.crt`` whose ``ca.crt`` is the cluster's CA bundle, which pods' token volumes
project (``protocol.podidentity``)."""

from __future__ import annotations

from dataclasses import dataclass

from actors.controllers.serviceaccount_plan import namespace_active
from protocol.objects import Obj, is_deleting, name_of
from protocol.podidentity import ROOT_CA_KEY, root_ca_configmap


@dataclass(frozen=True, slots=True)
class CreateConfigMap:
    configmap: Obj


@dataclass(frozen=True, slots=True)
class UpdateConfigMap:
    configmap: Obj


Action = CreateConfigMap | UpdateConfigMap


def plan(namespace: Obj | None, current: Obj | None, ca_pem: str) -> list[Action]:
    if not namespace_active(namespace):
        return []
    assert namespace is not None
    if current is None:
        return [CreateConfigMap(root_ca_configmap(name_of(namespace), ca_pem))]
    if is_deleting(current) or (current.get("data") or {}).get(ROOT_CA_KEY) == ca_pem:
        return []
    return [UpdateConfigMap({**current, "data": {**(current.get("data") or {}), ROOT_CA_KEY: ca_pem}})]
