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
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from bench.common import cluster, get_create_a_b
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
        return await get_create_a_b(clients, n, rounds, "bench", bindings=bindings)


def main() -> None:
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
