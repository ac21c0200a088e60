"""The data-path port: what carries Service traffic. Two implementations: ``nftables.NftablesDataPath``
(DNAT in the kernel, the default where ``nft`` works) and ``userspace.UserspaceProxy`` (asyncio relays,
the fallback). ``choose`` picks one for the ``--datapath`` flag."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from typing import Any, Protocol

from agents.proxy.nftables import NftablesDataPath, nft_available, orphaned, table_name
from agents.proxy.rules import Rule
from agents.proxy.userspace import UserspaceProxy

KINDS = ("auto", "nftables", "userspace")


class DataPath(Protocol):
    name: str

    async def apply(self, rules: list[Rule]) -> None:
        """Make the node forward exactly these rules (add, change and remove listeners and backends)."""

    async def close(self) -> None: ...

    def stats(self) -> dict[str, int]: ...


class DataPathUnavailable(Exception):
    """The data path asked for cannot work on this host."""


def choose(kind: str, *, cluster: str, service_cidr: str, drain_seconds: float = 30.0, log: Any = None) -> DataPath:
    """``auto``: nftables where ``nft`` works, else userspace. The userspace proxy listens on cluster IPs,
    so the service CIDR is made a local route of the node (``ip route replace local CIDR dev lo``), and a
    table this cluster's nftables proxy left when it was killed (which would refuse every cluster IP) is
    removed."""
    if kind not in KINDS:
        raise DataPathUnavailable(f"unknown data path {kind!r}; known: {', '.join(KINDS)}")
    if kind in ("auto", "nftables") and nft_available():
        return NftablesDataPath(table_name(cluster), service_cidr=service_cidr, log=log)
    if kind == "nftables":
        raise DataPathUnavailable("nftables data path asked for, but `nft list tables` fails here")
    local_service_range(service_cidr, log)
    remove_orphaned_table(table_name(cluster), log)
    return UserspaceProxy(drain_seconds=drain_seconds, log=log)


def remove_orphaned_table(table: str, log: Any = None) -> bool:
    """Delete ``table`` if a proxy that is gone left it here; whether it did."""
    if shutil.which("nft") is None or not orphaned(table):
        return False
    done = subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True, text=True, check=False)
    if log is not None:
        if done.returncode == 0:
            log.warning("removed the nftables table a stopped proxy of this cluster left (it refused every "
                        "cluster IP)", table=table)
        else:
            log.warning("a stopped proxy's nftables table refuses every cluster IP; remove it with "
                        f"`nft delete table ip {table}`", table=table, error=done.stderr.strip())
    return done.returncode == 0


def local_service_range(cidr: str, log: Any = None) -> bool:
    """Make every address of ``cidr`` local to the node (AnyIP) so that userspace listeners can bind them."""
    if ipaddress.ip_network(cidr).is_loopback:
        return True
    done = subprocess.run(["ip", "route", "replace", "local", cidr, "dev", "lo", "table", "local"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 and log is not None:
        log.warning("cannot make the service CIDR local; cluster IPs will not be served", cidr=cidr,
                    error=done.stderr.strip())
    return done.returncode == 0
