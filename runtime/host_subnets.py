"""Which IPv4 subnets this host already routes, and a free block for a new pod network.

A Podman bridge network cannot take a subnet that the host already routes (netavark refuses it: "subnet
… is already used on the host"), e.g. the pod network of a ``shoal up`` cluster left running. Tests and
benchmarks that start their own cluster on the same machine pick their pod range with ``free_block`` so
that they never collide with one; the kubelet names the conflict in its error (``conflicting``).
Routes come from ``ip -j -4 route show table all`` (iproute2's JSON); without ``ip`` nothing is known
to be used.
"""

from __future__ import annotations

import ipaddress
import json
import random
import shutil
import subprocess

Net = ipaddress.IPv4Network


def used_subnets() -> list[Net]:
    """The IPv4 destinations the host routes (default routes and host routes excluded)."""
    ip = shutil.which("ip")
    if ip is None:
        return []
    try:
        out = subprocess.run([ip, "-j", "-4", "route", "show", "table", "all"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
        routes = json.loads(out or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    nets: list[Net] = []
    for route in routes:
        dst = str(route.get("dst") or "")
        if not dst or dst == "default" or route.get("type") in ("local", "broadcast"):
            continue
        try:
            net = ipaddress.IPv4Network(dst, strict=False)
        except ValueError:
            continue
        if net.prefixlen < 32:
            nets.append(net)
    return nets


def conflicting(cidr: str, used: list[Net] | None = None) -> list[str]:
    """The host routes that overlap ``cidr`` (empty: it is free on this host)."""
    net = ipaddress.IPv4Network(cidr, strict=False)
    return [str(u) for u in (used_subnets() if used is None else used) if u.overlaps(net)]


def free_block(within: str, prefix: int, used: list[Net] | None = None) -> str:
    """A random ``/prefix`` of ``within`` that overlaps no host route; ValueError when none is left."""
    space = ipaddress.IPv4Network(within)
    taken = used_subnets() if used is None else used
    blocks = list(space.subnets(new_prefix=prefix)) if prefix > space.prefixlen else [space]
    random.shuffle(blocks)
    for block in blocks:
        if not any(u.overlaps(block) for u in taken):
            return str(block)
    raise ValueError(f"no /{prefix} of {within} is free on this host (all overlap its routes)")
