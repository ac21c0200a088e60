"""A container's security context and the pod-level options of its sandbox, as Kubernetes merges them. Pure.

- ``security_config(pod_spec, container)``: the pod's ``securityContext`` (runAsUser, runAsGroup,
  runAsNonRoot, supplementalGroups, fsGroup, seccompProfile) under the container's own (which wins), as
  Kubernetes' ``DetermineEffectiveSecurityContext``; fsGroup joins the supplementary groups. Capability
  names are given without ``CAP_`` in Kubernetes and with it to Podman; ``ALL`` stays ``ALL``.
- ``sandbox_extras(pod, pod_ip)``: ``hostAliases`` (and the pod's FQDN when it has a ``subdomain``) as
  /etc/hosts entries, ``shareProcessNamespace`` and the pod's ``sysctls``.
- ``image_runs_as_root(user)``: what Kubernetes' runAsNonRoot check concludes from an image's USER.
"""

from __future__ import annotations

from typing import Any

from agents.kubelet.cri import SecurityConfig
from protocol.objects import Obj, namespace_of

CLUSTER_DOMAIN = "cluster.local"


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _caps(value: Any) -> tuple[str, ...]:
    out = []
    for cap in value if isinstance(value, list) else []:
        name = str(cap).upper()
        out.append(name if name == "ALL" or name.startswith("CAP_") else f"CAP_{name}")
    return tuple(out)


def security_config(pod_spec: Obj, container: Obj) -> SecurityConfig:
    pod_sc, sc = _dict(pod_spec.get("securityContext")), _dict(container.get("securityContext"))

    def pick(field: str) -> Any:
        return sc[field] if sc.get(field) is not None else pod_sc.get(field)

    groups = [g for g in pod_sc.get("supplementalGroups") or [] if _int(g) is not None]
    if _int(pod_sc.get("fsGroup")) is not None and pod_sc["fsGroup"] not in groups:
        groups.append(pod_sc["fsGroup"])
    caps = _dict(sc.get("capabilities"))
    seccomp = _dict(pick("seccompProfile"))
    privileged = sc.get("privileged") is True
    return SecurityConfig(
        run_as_user=_int(pick("runAsUser")), run_as_group=_int(pick("runAsGroup")),
        run_as_non_root=pick("runAsNonRoot") is True, supplemental_groups=tuple(groups),
        read_only_root=sc.get("readOnlyRootFilesystem") is True,
        cap_add=_caps(caps.get("add")), cap_drop=_caps(caps.get("drop")), privileged=privileged,
        no_new_privileges=sc.get("allowPrivilegeEscalation") is False and not privileged,
        seccomp_unconfined=seccomp.get("type") == "Unconfined",
    )


def image_runs_as_root(user: str) -> str | None:
    """Why an image whose USER is ``user`` fails runAsNonRoot (None: it runs as a non-root uid)."""
    name = user.split(":", 1)[0].strip()
    if name in ("", "0", "root"):
        return "container has runAsNonRoot and image will run as root"
    if not name.isdigit():
        return f"container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root"
    return None


def check_run_as_non_root(security: SecurityConfig, image_user: str) -> str | None:
    """Kubernetes' verifyRunAsNonRoot: the error text, or None when the container may start."""
    if not security.run_as_non_root:
        return None
    if security.run_as_user is not None:
        return "container's runAsUser breaks non-root policy" if security.run_as_user == 0 else None
    return image_runs_as_root(image_user)


def pod_fqdn(pod: Obj) -> str | None:
    """``<hostname>.<subdomain>.<namespace>.svc.cluster.local`` for a pod with a subdomain."""
    spec = _dict(pod.get("spec"))
    subdomain = spec.get("subdomain")
    if not subdomain:
        return None
    hostname = spec.get("hostname") or _dict(pod.get("metadata")).get("name")
    return f"{hostname}.{subdomain}.{namespace_of(pod) or 'default'}.svc.{CLUSTER_DOMAIN}"


def sandbox_extras(pod: Obj, pod_ip: str) -> dict[str, Any]:
    """SandboxConfig fields: host_aliases, share_pid, sysctls, and the hostname (the FQDN with
    setHostnameAsFQDN)."""
    spec = _dict(pod.get("spec"))
    aliases: list[tuple[str, str]] = []
    fqdn = pod_fqdn(pod)
    if fqdn and pod_ip:
        aliases.append((fqdn, pod_ip))
    for alias in spec.get("hostAliases") or []:
        if isinstance(alias, dict) and alias.get("ip"):
            aliases += [(str(h), str(alias["ip"])) for h in alias.get("hostnames") or []]
    sysctls = tuple((str(s.get("name")), str(s.get("value"))) for s in
                    _dict(spec.get("securityContext")).get("sysctls") or [] if isinstance(s, dict) and s.get("name"))
    out: dict[str, Any] = {"host_aliases": tuple(aliases), "share_pid": spec.get("shareProcessNamespace") is True,
                           "sysctls": sysctls}
    if spec.get("setHostnameAsFQDN") is True and fqdn:
        out["hostname"] = fqdn[:64]
    return out
