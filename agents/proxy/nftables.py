"""The nftables data path: Service traffic DNAT'ed in the kernel, as kube-proxy's nftables mode.

One table of its own (``ip shoal-<cluster>``), rebuilt whole from the proxy's rules on every sync and
swapped in one ``nft -f`` transaction (add, delete, define the table: atomic, so no packet ever sees a
half-written table; established connections keep their conntrack NAT). No per-packet Python.

Layout (``render`` is pure and table-tested):
- ``prerouting`` (traffic from pods and other hosts) and ``output`` (the node's own) nat chains jump to
  ``services``: a verdict map ``daddr . l4proto . dport -> goto svc-N`` for cluster IPs, LoadBalancer
  ingress and node ports on given addresses, and for node ports on every local address
  (``fib daddr type local``, the ``0.0.0.0`` node address);
- ``svc-N`` marks the packet for masquerade and DNATs it to a ready endpoint picked at random, in one rule
  (``dnat ip addr . port to numgen random mod n map {...}``: one rule per Service keeps a rebuild of
  1,000 Services x 10 endpoints quick to parse);
- with ``sessionAffinity: ClientIP``, ``svc-N`` first sends clients with a live entry to their endpoint's
  chain ``ep-N-M``, else picks one at random; ``ep-N-M`` remembers the client (a set with timeout per
  endpoint), marks and DNATs. Every Service connection (but node-port and LoadBalancer traffic of an
  ``externalTrafficPolicy: Local`` Service, which keeps the client's address and goes only to this node's
  endpoints) is masqueraded (kube-proxy's ``masqueradeAll``): replies then come back through the node
  even when client and endpoint share a bridge without br_netfilter, and a pod reaching itself through
  its Service (hairpin) works;
- filter chains reject what is still addressed to the service CIDR after NAT: Services without ready
  endpoints, and unknown cluster IPs, answer "connection refused" instead of leaving the node.

Node ports on loopback addresses are not reachable in this mode (the kernel drops DNAT'ed packets with a
127/8 source unless ``route_localnet`` is set, which Shoal does not change). Affinity entries live in
per-endpoint sets and are lost when the table is rebuilt.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from typing import Any

from agents.proxy.rules import Rule
from runtime.pids import pid_alive

MASQ_MARK = "0x4000"
OWNER_COMMENT = "shoal-proxy pid="
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


class NftablesError(Exception):
    """``nft`` is missing or refused the table."""


def table_name(cluster: str) -> str:
    return _NAME_UNSAFE.sub("-", f"shoal-{cluster}")[:60]


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'")[:120] + '"'


def render(table: str, rules: list[Rule], service_cidr: str | None, *, owner: int | None = None) -> str:
    """The ``nft -f`` script replacing ``table`` with one carrying exactly ``rules``; ``owner``, the writing
    proxy's pid, goes in the table's comment (how ``orphaned`` tells a killed proxy's table)."""
    out = [f"table ip {table} {{}}", f"delete table ip {table}", f"table ip {table} {{"]
    if owner is not None:
        out.append(f"    comment {_quote(OWNER_COMMENT + str(owner))}")
    addressed: list[str] = []  # vmap elements for specific addresses
    anywhere: list[str] = []  # node ports on every local address
    chains: list[str] = []
    endpoint_chains: list[str] = []
    sets: list[str] = []
    for n, rule in enumerate(rules):
        proto = rule.protocol.lower()
        if proto not in ("tcp", "udp"):
            continue
        for host, port in rule.listen:
            if host in ("0.0.0.0", ""):
                anywhere.append(f"{proto} . {port} : goto svc-{n}")
            else:
                addressed.append(f"{host} . {proto} . {port} : goto svc-{n}")
        body = [f"    chain svc-{n} {{", f"        comment {_quote(rule.service)}"]
        if rule.backends and rule.affinity_timeout is None:
            # One rule: pick an endpoint at random and DNAT to it (no chain per endpoint to parse).
            if rule.masquerade:
                body.append(f"        meta mark set meta mark | {MASQ_MARK}")
            if len(rule.backends) == 1:
                body.append(f"        meta l4proto {proto} dnat to {rule.backends[0].ip}:{rule.backends[0].port}")
            else:
                targets = ", ".join(f"{m} : {b.ip} . {b.port}" for m, b in enumerate(rule.backends))
                body.append(f"        meta l4proto {proto} dnat ip addr . port to "
                            f"numgen random mod {len(rule.backends)} map {{ {targets} }}")
        elif rule.backends:  # ClientIP affinity: a chain per endpoint remembers its clients
            for m in range(len(rule.backends)):
                sets.append(f"    set aff-{n}-{m} {{ type ipv4_addr; flags dynamic,timeout; "
                            f"timeout {rule.affinity_timeout}s; }}")
                body.append(f"        ip saddr @aff-{n}-{m} goto ep-{n}-{m}")
            targets = ", ".join(f"{m} : goto ep-{n}-{m}" for m in range(len(rule.backends)))
            body.append(f"        numgen random mod {len(rule.backends)} vmap {{ {targets} }}")
            for m, backend in enumerate(rule.backends):
                mark = [f"        meta mark set meta mark | {MASQ_MARK}"] if rule.masquerade else []
                endpoint_chains += [f"    chain ep-{n}-{m} {{", *mark, f"        update @aff-{n}-{m} {{ ip saddr }}",
                                    f"        meta l4proto {proto} dnat to {backend.ip}:{backend.port}", "    }"]
        # no ready endpoint: no DNAT, so the filter chains refuse it
        body.append("    }")
        chains += body
    out += sets
    services = ["    chain services {"]
    if addressed:
        services.append("        ip daddr . meta l4proto . th dport vmap { " + ", ".join(addressed) + " }")
    if anywhere:
        services.append("        fib daddr type local meta l4proto . th dport vmap { " + ", ".join(anywhere) + " }")
    services.append("    }")
    out += services + chains + endpoint_chains
    out += [
        "    chain prerouting {", "        type nat hook prerouting priority -100; policy accept;",
        "        jump services", "    }",
        "    chain output {", "        type nat hook output priority -100; policy accept;",
        "        jump services", "    }",
        "    chain postrouting {", "        type nat hook postrouting priority 100; policy accept;",
        f"        meta mark & {MASQ_MARK} == {MASQ_MARK} masquerade", "    }",
    ]
    if service_cidr:
        for hook in ("output", "forward"):
            out += [f"    chain reject-{hook} {{", f"        type filter hook {hook} priority 0; policy accept;",
                    f"        ct state new ip daddr {service_cidr} reject", "    }"]
    out.append("}")
    return "\n".join(out) + "\n"


def owner_pid(listing: str) -> int | None:
    """The pid of the proxy that wrote a listed table (``None``: no owner recorded, an older proxy's)."""
    found = re.search(r'^\s*comment "' + re.escape(OWNER_COMMENT) + r'(\d+)"', listing, flags=re.MULTILINE)
    return int(found.group(1)) if found else None


def orphaned(table: str) -> bool:
    """Whether ``table`` exists here and the proxy that wrote it is gone: killed before ``close``, its
    filter chains go on refusing every new connection to the service CIDR."""
    done = subprocess.run(["nft", "-t", "list", "table", "ip", table], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return False
    pid = owner_pid(done.stdout)
    return pid is None or not pid_alive(pid)


def nft_available() -> bool:
    """Whether ``nft`` exists and may list tables here (root, nf_tables in the kernel)."""
    if shutil.which("nft") is None:
        return False
    done = subprocess.run(["nft", "list", "tables"], capture_output=True, check=False)
    return done.returncode == 0


async def run_nft(script: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec("nft", *args, "-f", "-", stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(script.encode())
    if proc.returncode != 0:
        raise NftablesError(f"nft -f refused the table: {err.decode().strip()[:2000]}")
    return out.decode()


class NftablesDataPath:
    """``DataPath`` on an nftables table of its own. ``close`` deletes the table when ``cleanup``."""

    name = "nftables"

    def __init__(self, table: str, *, service_cidr: str | None = None, cleanup: bool = True, log: Any = None) -> None:
        if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_-]*", table):
            raise NftablesError(f"bad nftables table name {table!r}")
        self.table = table
        self.service_cidr = service_cidr
        self.cleanup = cleanup
        self.log = log
        self.applies = 0
        self.failures = 0
        self.last_apply_ms = 0
        self.rules = 0

    async def apply(self, rules: list[Rule]) -> None:
        script = render(self.table, rules, self.service_cidr, owner=os.getpid())
        started = time.monotonic()
        try:
            await run_nft(script)
        except NftablesError:
            self.failures += 1
            raise
        self.applies += 1
        self.rules = len(rules)
        self.last_apply_ms = round((time.monotonic() - started) * 1000)

    async def close(self) -> None:
        if self.cleanup:
            await delete_table(self.table)

    def stats(self) -> dict[str, int]:
        return {"nft_applies": self.applies, "nft_failures": self.failures, "nft_last_apply_ms": self.last_apply_ms}


async def delete_table(table: str) -> None:
    """Remove ``table`` if it exists (idempotent)."""
    await run_nft(f"table ip {table} {{}}\ndelete table ip {table}\n")
