"""The pure translation of a pod's security context, hosts and lifecycle into runtime configs (table-tested),
and the fake runtime recording it."""

from __future__ import annotations

from typing import Any

import pytest

from agents.kubelet.cri import ContainerConfig, SecurityConfig
from agents.kubelet.podman_runtime import _security_kwargs
from agents.kubelet.podspec import container_config, sandbox_config
from agents.kubelet.security import check_run_as_non_root, pod_fqdn, security_config


@pytest.mark.parametrize("pod_sc,sc,expected", [
    ({}, {}, SecurityConfig()),
    ({"runAsUser": 1, "runAsGroup": 2, "runAsNonRoot": True}, {},
     SecurityConfig(run_as_user=1, run_as_group=2, run_as_non_root=True)),
    ({"runAsUser": 1}, {"runAsUser": 5}, SecurityConfig(run_as_user=5)),  # the container's wins
    ({"supplementalGroups": [4], "fsGroup": 7}, {}, SecurityConfig(supplemental_groups=(4, 7))),
    ({}, {"capabilities": {"add": ["net_admin", "CAP_CHOWN"], "drop": ["ALL"]}},
     SecurityConfig(cap_add=("CAP_NET_ADMIN", "CAP_CHOWN"), cap_drop=("ALL",))),
    ({}, {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
     SecurityConfig(no_new_privileges=True, read_only_root=True)),
    ({}, {"privileged": True}, SecurityConfig(privileged=True)),
    ({"seccompProfile": {"type": "Unconfined"}}, {}, SecurityConfig(seccomp_unconfined=True)),
])
def test_effective_security_context(pod_sc: dict[str, Any], sc: dict[str, Any], expected: SecurityConfig) -> None:
    assert security_config({"securityContext": pod_sc}, {"securityContext": sc}) == expected


@pytest.mark.parametrize("security,user,refused", [
    (SecurityConfig(), "", None),
    (SecurityConfig(run_as_non_root=True), "", "image will run as root"),
    (SecurityConfig(run_as_non_root=True), "root", "image will run as root"),
    (SecurityConfig(run_as_non_root=True), "0:0", "image will run as root"),
    (SecurityConfig(run_as_non_root=True), "nginx", "non-numeric user (nginx)"),
    (SecurityConfig(run_as_non_root=True), "101", None),
    (SecurityConfig(run_as_non_root=True, run_as_user=1000), "", None),
    (SecurityConfig(run_as_non_root=True, run_as_user=0), "", "runAsUser breaks non-root policy"),
])
def test_run_as_non_root(security: SecurityConfig, user: str, refused: str | None) -> None:
    found = check_run_as_non_root(security, user)
    assert (found is None) if refused is None else (found is not None and refused in found)


def test_podman_arguments() -> None:
    config = ContainerConfig("c", "i", tty=True, stdin=True, security=SecurityConfig(
        run_as_user=1000, run_as_group=3000, supplemental_groups=(2000,), read_only_root=True, cap_add=("CAP_X",),
        cap_drop=("ALL",), no_new_privileges=True, seccomp_unconfined=True))
    assert _security_kwargs(config) == {
        "user": "1000:3000", "group_add": ["2000"], "read_only": True, "cap_add": ["CAP_X"], "cap_drop": ["ALL"],
        "no_new_privileges": True, "seccomp_profile_path": "unconfined", "tty": True, "stdin_open": True}
    assert _security_kwargs(ContainerConfig("c", "i", security=SecurityConfig(run_as_group=5))) == {"user": "0:5"}


def test_sandbox_hosts_shared_pid_sysctls_and_fqdn() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
           "spec": {"hostname": "web", "subdomain": "sub", "setHostnameAsFQDN": True, "shareProcessNamespace": True,
                    "hostAliases": [{"ip": "198.51.100.1", "hostnames": ["a", "b"]}],
                    "securityContext": {"sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1 2"}]},
                    "containers": []}}
    assert pod_fqdn(pod) == "web.sub.ns.svc.cluster.local"
    sandbox = sandbox_config(pod, "n", "127.0.0.1", "198.18.0.5")
    assert sandbox.host_aliases == (("web.sub.ns.svc.cluster.local", "198.18.0.5"), ("a", "198.51.100.1"),
                                    ("b", "198.51.100.1"))
    assert sandbox.share_pid and sandbox.sysctls == (("net.ipv4.ip_local_port_range", "1 2"),)
    assert sandbox.hostname == "web.sub.ns.svc.cluster.local"


def test_container_config_carries_the_spec() -> None:
    c = {"name": "c", "image": "i", "tty": True, "stdin": True, "imagePullPolicy": "Never",
         "terminationMessagePolicy": "FallbackToLogsOnError", "securityContext": {"runAsUser": 7}}
    config = container_config(c, None, {"securityContext": {"fsGroup": 9}})
    assert (config.tty, config.stdin, config.image_pull_policy, config.termination_policy) == (
        True, True, "Never", "FallbackToLogsOnError")
    assert config.security == SecurityConfig(run_as_user=7, supplemental_groups=(9,))
