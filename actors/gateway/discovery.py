"""Discovery documents (``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>/<version>``) for the
kinds Shoal has (``protocol.kinds.KINDS``); pure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from protocol.kinds import KINDS, KindInfo

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-shoal", "gitCommit": "", "gitTreeState": "clean",
           "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"}
"""The Kubernetes version whose API the gateway speaks (kubectl warns beyond one minor of skew)."""


def group_versions() -> dict[str, list[KindInfo]]:
    """``apiVersion`` -> the kinds served there, in ``KINDS`` order."""
    out: dict[str, list[KindInfo]] = {}
    for info in KINDS:
        out.setdefault(info.api_version, []).append(info)
    return out


def categories(info: KindInfo) -> list[str]:
    return list(info.categories)


def _resources(kinds: Iterable[KindInfo]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for info in kinds:
        base = {"namespaced": info.namespaced, "kind": info.kind}
        resource: dict[str, Any] = {"name": info.plural, "singularName": info.singular, **base, "verbs": VERBS}
        if info.short_names:
            resource["shortNames"] = list(info.short_names)
        if categories(info):
            resource["categories"] = categories(info)
        out.append(resource)
        if info.has_status:
            out.append({"name": f"{info.plural}/status", "singularName": "", **base,
                        "verbs": ["get", "patch", "update"]})
        if "scale" in info.subresources:
            out.append({"name": f"{info.plural}/scale", "singularName": "", "namespaced": True, "kind": "Scale",
                        "group": "autoscaling", "version": "v1", "verbs": ["get", "patch", "update"]})
        if "log" in info.subresources:
            out.append({"name": f"{info.plural}/log", "singularName": "", **base, "verbs": ["get"]})
        if "eviction" in info.subresources:
            out.append({"name": f"{info.plural}/eviction", "singularName": "", **base, "kind": "Eviction",
                        "group": "policy", "version": "v1", "verbs": ["create"]})
        if "binding" in info.subresources:
            out.append({"name": f"{info.plural}/binding", "singularName": "", **base, "kind": "Binding",
                        "verbs": ["create"]})
        if "token" in info.subresources:
            out.append({"name": f"{info.plural}/token", "singularName": "", **base, "kind": "TokenRequest",
                        "group": "authentication.k8s.io", "version": "v1", "verbs": ["create"]})
    return out


AUTHENTICATION = "authentication.k8s.io/v1"
AUTHORIZATION = "authorization.k8s.io/v1"
"""Access reviews, answered by the API's RBAC through the gateway (``actors/gateway/access.py``)."""
REVIEWS = (("selfsubjectaccessreviews", "SelfSubjectAccessReview"), ("subjectaccessreviews", "SubjectAccessReview"),
           ("selfsubjectrulesreviews", "SelfSubjectRulesReview"))
NAMESPACED_REVIEWS = (("localsubjectaccessreviews", "LocalSubjectAccessReview"),)
METRICS = "metrics.k8s.io/v1beta1"
"""PodMetrics and NodeMetrics, served from the kubelets (``actors/gateway/metrics.py``): discovery lists
them so that ``kubectl top pods|nodes`` finds the metrics API."""
"""Served by the gateway itself: ``selfsubjectreviews`` (``kubectl auth whoami``)."""


def resource_list(api_version: str) -> dict[str, Any] | None:
    if api_version == AUTHENTICATION:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version, "resources": [
            {"name": "selfsubjectreviews", "singularName": "selfsubjectreview", "namespaced": False,
             "kind": "SelfSubjectReview", "verbs": ["create"]}]}
    if api_version == AUTHORIZATION:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version, "resources": [
            {"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind, "verbs": ["create"]}
            for reviews, namespaced in ((REVIEWS, False), (NAMESPACED_REVIEWS, True)) for name, kind in reviews]}
    if api_version == METRICS:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version, "resources": [
            {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]},
            {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics",
             "verbs": ["get", "list"]}]}
    kinds = group_versions().get(api_version)
    if kinds is None:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version,
            "resources": _resources(kinds)}


def core_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def group_list() -> dict[str, Any]:
    groups = []
    for api_version in (*group_versions(), AUTHENTICATION, AUTHORIZATION, METRICS):
        if "/" not in api_version:
            continue
        group, version = api_version.split("/", 1)
        gv = {"groupVersion": api_version, "version": version}
        groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(name: str) -> dict[str, Any] | None:
    for entry in group_list()["groups"]:
        if entry["name"] == name:
            return {"kind": "APIGroup", "apiVersion": "v1", **entry}
    return None


AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
"""Aggregated discovery: ``/api`` and ``/apis`` in one answer each, when the client accepts it (kubectl does),
instead of one request per group-version."""


def wants_aggregated(accept: str) -> bool:
    first = accept.split(",")[0].replace(" ", "")
    return "g=apidiscovery.k8s.io" in first and "v=v2;" in first + ";" and "as=APIGroupDiscoveryList" in first


def _aggregated_resources(api_version: str) -> list[dict[str, Any]]:
    listing = resource_list(api_version) or {"resources": []}
    group, _, version = api_version.rpartition("/")
    out: list[dict[str, Any]] = []
    for resource in listing["resources"]:
        if "/" in resource["name"]:
            parent, sub = resource["name"].split("/", 1)
            kind = {"group": resource.get("group", group), "version": resource.get("version", version),
                    "kind": resource["kind"]}
            for owner in out:
                if owner["resource"] == parent:
                    owner.setdefault("subresources", []).append(
                        {"subresource": sub, "responseKind": kind, "verbs": resource["verbs"]})
            continue
        entry: dict[str, Any] = {
            "resource": resource["name"], "singularResource": resource["singularName"],
            "responseKind": {"group": group, "version": version, "kind": resource["kind"]},
            "scope": "Namespaced" if resource["namespaced"] else "Cluster", "verbs": resource["verbs"]}
        for key in ("shortNames", "categories"):
            if key in resource:
                entry[key] = resource[key]
        out.append(entry)
    return out


def aggregated(core: bool) -> dict[str, Any]:
    """The ``APIGroupDiscoveryList`` of ``/api`` (``core``) or ``/apis``."""
    versions = ["v1"] if core else [v for v in (*group_versions(), AUTHENTICATION, AUTHORIZATION, METRICS) if "/" in v]
    items = []
    for api_version in versions:
        group = "" if core else api_version.split("/", 1)[0]
        version = api_version.rpartition("/")[2]
        items.append({"metadata": {"name": group, "creationTimestamp": None},
                      "versions": [{"version": version, "resources": _aggregated_resources(api_version),
                                    "freshness": "Current"}]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": items}
