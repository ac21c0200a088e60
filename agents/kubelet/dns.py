"""A pod's resolv.conf from its ``dnsPolicy`` and ``dnsConfig`` (Kubernetes' rules). Pure.

- ``ClusterFirst`` (the default; ``ClusterFirstWithHostNet`` likewise, pods here never use the host
  network): the cluster DNS (the node's pod-network gateway), ``search <ns>.svc.<domain> svc.<domain>
  <domain>``, ``options ndots:5``. Without a cluster DNS (loopback pod network) it falls back to
  ``Default``, as the kubelet does without ``--cluster-dns``.
- ``Default``: the node's resolv.conf (None: the runtime's own default, which is the node's).
- ``None``: only what ``dnsConfig`` says.
``dnsConfig`` adds nameservers and searches (duplicates dropped) and options (``name`` or ``name:value``,
a later value of a name replacing the earlier one), as Kubernetes merges them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol.network import CLUSTER_DOMAIN


@dataclass(frozen=True, slots=True)
class Resolv:
    nameservers: tuple[str, ...]
    searches: tuple[str, ...]
    options: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HostResolv:
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def parse_resolv_conf(text: str) -> HostResolv:
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) < 2:
            continue
        if parts[0] == "nameserver":
            nameservers.append(parts[1])
        elif parts[0] in ("search", "domain"):
            searches = parts[1:]
        elif parts[0] == "options":
            options += parts[1:]
    return HostResolv(tuple(nameservers), tuple(searches), tuple(options))


def _unique(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def _merge_options(base: Sequence[str], extra: Sequence[str]) -> tuple[str, ...]:
    merged: dict[str, str] = {}
    for option in (*base, *extra):
        merged[option.split(":", 1)[0]] = option
    return tuple(merged.values())


def pod_resolv(policy: str, namespace: str, *, cluster_dns: str | None, host: HostResolv,
               nameservers: Sequence[str] = (), searches: Sequence[str] = (), options: Sequence[str] = (),
               domain: str = CLUSTER_DOMAIN) -> Resolv | None:
    """The pod's resolv.conf, or None for the runtime's default (the node's own)."""
    policy = policy or "ClusterFirst"
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and cluster_dns:
        base = Resolv((cluster_dns,), (f"{namespace}.svc.{domain}", f"svc.{domain}", domain), ("ndots:5",))
    elif policy == "None":
        base = Resolv((), (), ())
    else:  # Default, or ClusterFirst without a cluster DNS
        if not (nameservers or searches or options):
            return None
        base = Resolv(host.nameservers, host.searches, host.options)
    return Resolv(_unique([*base.nameservers, *nameservers])[:3], _unique([*base.searches, *searches])[:32],
                  _merge_options(base.options, options))
