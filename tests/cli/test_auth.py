"""``shoal auth can-i`` and the global ``--as``/``--as-group``: the CLI acts as another user, as kubectl."""

from __future__ import annotations

from tests.cli.conftest import ShoalCli

ROBOT = ("--as", "system:serviceaccount:team:robot")
BINDING = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: robot-view, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: robot, namespace: team}]
"""
POD = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: team}
spec: {containers: [{name: c, image: busybox}]}
"""


async def test_can_i_and_acting_as_another_user(cli: ShoalCli) -> None:
    assert (await cli("create", "namespace", "team")).rc == 0
    assert (await cli("auth", "can-i", "delete", "nodes")).out.strip() == "yes"  # the trusted admin
    no = await cli("auth", "can-i", "list", "pods", "-n", "team", *ROBOT)
    assert no.rc == 1 and no.out.strip() == "no", no
    refused = await cli("get", "pods", "-n", "team", *ROBOT)
    assert refused.rc == 1 and ('Error from server (Forbidden): pods is forbidden: User '
                                '"system:serviceaccount:team:robot" cannot list resource "pods" in API group "" '
                                'in the namespace "team"') in refused.err, refused
    assert (await cli("apply", "-f", "-", stdin=BINDING)).rc == 0
    yes = await cli("auth", "can-i", "list", "pods", "-n", "team", *ROBOT)
    assert yes.rc == 0 and yes.out.strip() == "yes", yes
    assert (await cli("auth", "can-i", "get", "pods/log", "x", "-n", "team", *ROBOT)).out.strip() == "yes"
    assert (await cli("auth", "can-i", "create", "deploy", "-n", "team", *ROBOT)).out.strip() == "no"
    assert (await cli("auth", "can-i", "list", "pods", "-n", "other", *ROBOT)).out.strip() == "no"
    listed = await cli("get", "pods", "-n", "team", *ROBOT)
    assert listed.rc == 0, listed
    # streams go to the kubelet, not through the API: they are asked for first (view: no exec)
    assert (await cli("apply", "-f", "-", stdin=POD)).rc == 0
    execed = await cli("exec", "-n", "team", *ROBOT, "web", "--", "true")
    assert execed.rc == 1 and 'pods "web" is forbidden: User "system:serviceaccount:team:robot" cannot create ' \
        'resource "pods/exec"' in execed.err, execed
    logs = await cli("logs", "web", "-n", "team", *ROBOT)  # allowed: refused later, the pod is on no node
    assert logs.rc == 1 and "forbidden" not in logs.err, logs
    written = await cli("create", "job", "j", "--image=busybox", "-n", "team", *ROBOT)
    assert written.rc == 1 and 'cannot create resource "jobs" in API group "batch"' in written.err, written
    rules = await cli("auth", "can-i", "--list", "-n", "team", *ROBOT)
    assert rules.rc == 0 and "deployments.apps" in rules.out and "/api/*" in rules.out, rules
    # a group grants too
    assert (await cli("auth", "can-i", "delete", "nodes", "--as", "carol", "--as-group", "system:masters")
            ).out.strip() == "yes"
    usage = await cli("get", "pods", "--as-group", "system:masters")
    assert usage.rc == 2 and "--as-group needs --as" in usage.err, usage
