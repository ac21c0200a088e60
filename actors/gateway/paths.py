"""Parsing a resource URL of the Kubernetes API into what a NATS request needs; pure.

``/api/v1[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]`` and the same under
``/apis/<group>/<version>``. ``/api/v1/namespaces/<name>`` is the Namespace ``<name>`` (not a namespace
prefix), as in Kubernetes.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import NotFound
from protocol.kinds import KINDS, KindInfo

NOT_YET = frozenset({"proxy", "ephemeralcontainers"})
STREAMED = frozenset({"exec", "attach", "portforward"})
"""Pod subresources served over websockets (``streaming``)."""


@dataclass(frozen=True, slots=True)
class Target:
    info: KindInfo
    namespace: str | None
    """None: every namespace (a list or watch without a namespace), or a cluster-scoped kind."""
    name: str | None = None
    subresource: str | None = None


def _find(api_version: str, plural: str) -> KindInfo:
    for info in KINDS:
        if info.api_version == api_version and info.plural == plural:
            return info
    raise NotFound(f"the server could not find the requested resource ({plural} in {api_version})",
                   {"resource": plural})


def parse(api_version: str, tail: str) -> Target:
    parts = [p for p in tail.split("/") if p != ""]
    namespace: str | None = None
    if len(parts) >= 3 and parts[0] == "namespaces":
        namespace, parts = parts[1], parts[2:]
    if not parts or len(parts) > 3:
        raise NotFound(f"the server could not find the requested resource {tail!r}")
    info = _find(api_version, parts[0])
    if namespace is not None and not info.namespaced:
        raise NotFound(f"{info.plural} are not namespaced")
    name = parts[1] if len(parts) > 1 else None
    sub = parts[2] if len(parts) > 2 else None
    if sub in NOT_YET and info.kind == "Pod":
        raise NotFound(f"pods/{sub} is not served by Shoal's Kubernetes API gateway yet; "
                       "`kubectl exec`, `logs`, `cp` and `port-forward` work",
                       {"resource": f"pods/{sub}"})
    if sub is not None and sub not in info.subresources and not (sub in STREAMED and info.kind == "Pod"):
        raise NotFound(f"the server could not find the requested resource ({info.plural}/{sub})")
    return Target(info, namespace, name, sub)
