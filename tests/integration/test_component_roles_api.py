"""The bootstrap policy in a running API: an older cluster's component roles are reconciled at start, and the
components' identity-scoped subjects are served under those roles (real nats-server and API actor)."""

from __future__ import annotations

import nats
import pytest

from actors.api.rbaccache import ensure_bootstrap
from actors.api.server import ApiActor
from protocol import rbac_bootstrap
from protocol.errors import Forbidden
from protocol.rbac import Rule
from runtime.client import ApiClient
from runtime.nats_server import NatsServer


def rules(role: dict[str, object]) -> set[Rule | None]:
    return {Rule.parse(r) for r in role["rules"]}  # type: ignore[attr-defined]


def bootstrap(name: str) -> dict[str, object]:
    return next(r for r in rbac_bootstrap.CLUSTER_ROLES if r["metadata"]["name"] == name)


async def test_an_older_clusters_component_roles_are_reconciled_at_start(nats_server: NatsServer, api: ApiActor,
                                                                        client: ApiClient) -> None:
    """A cluster made before a component's role grew (here: the scheduler's role without its Lease rule, the
    cloud controller manager's missing) gets what it lacks when an API actor starts, and keeps what its owner
    added; a role whose owner opted out (``autoupdate: "false"``) is left alone."""
    scheduler = await client.get("ClusterRole", rbac_bootstrap.SCHEDULER)
    extra = {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["scheduler-config"]}
    lease = [r for r in scheduler["rules"] if "leases" in r["resources"] and r.get("resourceNames")]
    assert lease
    await client.update({**scheduler, "rules": [*(r for r in scheduler["rules"] if r not in lease), extra]})
    await client.delete("ClusterRoleBinding", rbac_bootstrap.CLOUD_CONTROLLER_MANAGER)
    await client.delete("ClusterRole", rbac_bootstrap.CLOUD_CONTROLLER_MANAGER)
    volume = await client.get("ClusterRole", "system:volume-scheduler")
    volume["metadata"]["annotations"] = {rbac_bootstrap.AUTOUPDATE_KEY: "false"}
    volume["rules"] = volume["rules"][:1]
    await client.update(volume)

    nc = await nats.connect(nats_server.url)
    try:
        as_scheduler = ApiClient(nc, identity=rbac_bootstrap.SCHEDULER)
        lease_obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": rbac_bootstrap.SCHEDULER_LEASE, "namespace": "kube-system"},
                     "spec": {"holderIdentity": "s1"}}
        await as_scheduler.create(lease_obj)
        with pytest.raises(Forbidden):  # the older role lacks the Lease rule
            await as_scheduler.get("Lease", rbac_bootstrap.SCHEDULER_LEASE, "kube-system")

        await ensure_bootstrap(api.service)  # what every API actor does at start

        reconciled = await client.get("ClusterRole", rbac_bootstrap.SCHEDULER)
        assert rules(bootstrap(rbac_bootstrap.SCHEDULER)) <= rules(reconciled)
        assert Rule.parse(extra) in rules(reconciled)
        assert rules(await client.get("ClusterRole", rbac_bootstrap.CLOUD_CONTROLLER_MANAGER)) == rules(
            bootstrap(rbac_bootstrap.CLOUD_CONTROLLER_MANAGER))
        await client.get("ClusterRoleBinding", rbac_bootstrap.CLOUD_CONTROLLER_MANAGER)
        assert len((await client.get("ClusterRole", "system:volume-scheduler"))["rules"]) == 1
        got = await as_scheduler.get("Lease", rbac_bootstrap.SCHEDULER_LEASE, "kube-system")
        assert got["spec"]["holderIdentity"] == "s1"
        await ensure_bootstrap(api.service)  # nothing left to add: no write
        assert (await client.get("ClusterRole", rbac_bootstrap.SCHEDULER))["metadata"]["resourceVersion"] == \
            reconciled["metadata"]["resourceVersion"]
    finally:
        await nc.close()


async def test_an_unknown_identity_on_identity_scoped_subjects_gets_only_what_authenticated_users_get(
        nats_server: NatsServer, api: ApiActor) -> None:
    """A user name without bindings (NATS would not let anybody publish there; here the server is open) is
    authorized as any authenticated user: discovery and self-reviews, nothing else."""
    nc = await nats.connect(nats_server.url)
    try:
        nobody = ApiClient(nc, identity="system:nobody")
        with pytest.raises(Forbidden):
            await nobody.list("Pod")
        with pytest.raises(Forbidden):
            await nobody.info()
    finally:
        await nc.close()
