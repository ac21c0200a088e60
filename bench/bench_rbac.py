"""API latency with RBAC evaluation (requests carrying ``as``) vs without (the trusted caller), same run.

One cluster (nats-server and an API actor) holding a realistic policy: the bootstrap roles plus
``--bindings`` RoleBindings spread over as many namespaces and ``--bindings`` / 10 extra ClusterRoles. The
impersonated user is a ServiceAccount bound to ``edit`` in its namespace (found through the bindings of its
groups and its own name). Get and create of ConfigMaps are measured in interleaved rounds, alternating who
goes first, so the machine's drift hits both alike. What RBAC costs per request is one policy evaluation from
the API's cached index (rebuilt only when an RBAC object changes) and the ``as`` map on the wire.

A third client acts as a control-plane component (``system:kube-controller-manager`` on its identity-scoped
subjects ``shoal.user.<U>.api.>``, as the controller manager now does): its requests are authorized by the
component's bootstrap role; figures ``*_component_*`` and ``*_ratio_component_p50`` (against the trusted caller).

RBAC writes by a user are checked for escalation (the user must hold what it grants, ``protocol.rbac_escalation``),
after the API's cache has caught up with the datastore: ``binding_*`` creates RoleBindings of ``view`` as the
robot (checked) next to the same creates by the trusted caller (not checked), alternating one by one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from bench.common import cluster, get_create_a_b, percentile, progress, stop_on_signals
from protocol.rbac_bootstrap import CONTROLLER_MANAGER
from runtime.client import ApiClient

ROBOT = {"user": "system:serviceaccount:bench:robot",
         "groups": ["system:serviceaccounts", "system:serviceaccounts:bench", "system:authenticated"]}
G = "rbac.authorization.k8s.io"


async def policy(client: ApiClient, bindings: int) -> None:
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
    await client.create({"apiVersion": f"{G}/v1", "kind": "RoleBinding",
                         "metadata": {"name": "robot-edit", "namespace": "bench"},
                         "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "edit"},
                         "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "bench"}]})
    for i in range(max(1, bindings // 10)):
        await client.create({"apiVersion": f"{G}/v1", "kind": "ClusterRole", "metadata": {"name": f"extra-{i}"},
                             "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": [f"things{i}"]}]})
    for i in range(bindings):
        ns = f"team-{i}"
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        await client.create({"apiVersion": f"{G}/v1", "kind": "RoleBinding",
                             "metadata": {"name": "view", "namespace": ns},
                             "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "view"},
                             "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": ns},
                                          {"kind": "Group", "apiGroup": G, "name": "system:serviceaccounts"}]})


async def main_async(n: int, rounds: int, bindings: int) -> dict[str, Any]:
    async with cluster() as c:
        await policy(c.client, bindings)
        clients = {"rbac": ApiClient(c.client.nc, impersonate=lambda: ROBOT), "trusted": c.client,
                   "component": ApiClient(c.client.nc, identity=CONTROLLER_MANAGER)}
        figures = await get_create_a_b(clients, n, rounds, "bench", bindings=bindings)
        return {**figures, **await binding_creates(clients["rbac"], clients["trusted"], max(20, n // 10))}


async def binding_creates(checked: ApiClient, trusted: ApiClient, n: int) -> dict[str, Any]:
    """RoleBinding creates as the robot (escalation-checked: it is ``admin`` of their namespace, so it may
    write bindings of ``view``, which it holds) and as the trusted caller, alternated."""
    await trusted.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench-rbac"}})
    await trusted.create({"apiVersion": f"{G}/v1", "kind": "RoleBinding",
                          "metadata": {"name": "robot-admin", "namespace": "bench-rbac"},
                          "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "admin"},
                          "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "bench"}]})
    lat: dict[str, list[float]] = {"checked": [], "trusted": []}
    for i in range(n):
        for tag, client in (("checked", checked), ("trusted", trusted)) if i % 2 else (
                ("trusted", trusted), ("checked", checked)):
            started = time.perf_counter()
            await client.create({"apiVersion": f"{G}/v1", "kind": "RoleBinding",
                                 "metadata": {"name": f"{tag}-{i}", "namespace": "bench-rbac"},
                                 "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "view"},
                                 "subjects": [{"kind": "User", "apiGroup": G, "name": f"user-{i}"}]})
            lat[tag].append((time.perf_counter() - started) * 1000)
    figures = {f"binding_{tag}_p50_ms": round(percentile(values, 50), 3) for tag, values in lat.items()}
    figures["binding_ratio_p50"] = round(figures["binding_checked_p50_ms"] / figures["binding_trusted_p50_ms"], 2)
    progress(f"RoleBinding create p50 {figures['binding_checked_p50_ms']} ms escalation-checked vs "
             f"{figures['binding_trusted_p50_ms']} ms trusted ({figures['binding_ratio_p50']}x)")
    return figures


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="gets and creates per client")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--bindings", type=int, default=200, help="RoleBindings (one namespace each) besides "
                                                                  "the measured user's")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    result = asyncio.run(main_async(args.n, args.rounds, args.bindings))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
