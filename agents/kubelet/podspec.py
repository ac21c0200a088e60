"""Translating a Pod (a plain Kubernetes-shaped map) into the runtime's sandbox and container configs. Pure.

- env: ``env[].value`` here; ``valueFrom``/``envFrom`` and ``$(VAR)`` expansion need the referenced
  objects and are resolved just before the container is created (``volumes.PodVolumes.prepare``);
- ``command`` overrides the image entrypoint, ``args`` its command;
- ports with a ``hostPort`` are published on ``hostIP``, else on the node's address;
- ``resources.limits`` cpu/memory become CFS quota and memory limit.
"""

from __future__ import annotations

from typing import Any

from agents.kubelet.cri import ContainerConfig, PortMapping, SandboxConfig
from agents.kubelet.security import sandbox_extras, security_config
from protocol.objects import Obj, meta, name_of, namespace_of, uid_of
from protocol.quantity import QuantityError, cpu_millis, memory_bytes

RESTART_ALWAYS = "Always"
RESTART_ON_FAILURE = "OnFailure"
RESTART_NEVER = "Never"


def pod_key(pod: Obj) -> str:
    return f"{namespace_of(pod) or 'default'}/{name_of(pod)}"


def containers_of(pod: Obj) -> list[Obj]:
    return [c for c in (pod.get("spec") or {}).get("containers") or [] if isinstance(c, dict)]


def init_containers_of(pod: Obj) -> list[Obj]:
    return [c for c in (pod.get("spec") or {}).get("initContainers") or [] if isinstance(c, dict)]


def restart_policy(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("restartPolicy") or RESTART_ALWAYS)


def grace_period(pod: Obj) -> int:
    """The grace period to stop the pod's containers with: the deletion's, else the spec's (30 s)."""
    value = meta(pod).get("deletionGracePeriodSeconds")
    if value is None:
        value = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 30


def sandbox_config(pod: Obj, node_name: str, address: str, pod_ip: str = "") -> SandboxConfig:
    """The sandbox of ``pod``: every container port is published on the pod's own address ``pod_ip``
    (``<pod_ip>:<containerPort>``, as a pod IP works in Kubernetes), and hostPorts on the node address."""
    ports: list[PortMapping] = []
    for c in containers_of(pod):
        for p in c.get("ports") or []:
            if not isinstance(p, dict):
                continue
            if pod_ip and p.get("containerPort"):
                ports.append(PortMapping(container_port=int(p["containerPort"]), host_port=int(p["containerPort"]),
                                         host_ip=pod_ip, protocol=str(p.get("protocol") or "TCP").lower()))
            if not p.get("hostPort"):
                continue
            ports.append(
                PortMapping(
                    container_port=int(p["containerPort"]),
                    host_port=int(p["hostPort"]),
                    host_ip=str(p.get("hostIP") or address),
                    protocol=str(p.get("protocol") or "TCP").lower(),
                )
            )
    spec = pod.get("spec") or {}
    dns_raw = spec.get("dnsConfig")
    dns: dict[str, Any] = dns_raw if isinstance(dns_raw, dict) else {}
    options = tuple(f"{o['name']}:{o['value']}" if o.get("value") not in (None, "") else str(o["name"])
                    for o in dns.get("options") or [] if isinstance(o, dict) and o.get("name"))
    extras = sandbox_extras(pod, pod_ip)
    hostname = extras.pop("hostname", str((pod.get("spec") or {}).get("hostname") or ""))
    return SandboxConfig(
        **extras,
        dns_policy=str(spec.get("dnsPolicy") or "ClusterFirst"),
        dns_nameservers=tuple(str(x) for x in dns.get("nameservers") or ()),
        dns_searches=tuple(str(x) for x in dns.get("searches") or ()),
        dns_options=options,
        pod_uid=uid_of(pod),
        namespace=namespace_of(pod) or "default",
        name=name_of(pod),
        node_name=node_name,
        ports=tuple(ports),
        hostname=hostname,
        pod_ip=pod_ip,
    )


def _limit(resources: Any, name: str) -> Any:
    limits = (resources or {}).get("limits") if isinstance(resources, dict) else None
    return (limits or {}).get(name) if isinstance(limits, dict) else None


def service_env(services: list[Obj], gateway: str | None) -> dict[str, str]:
    """Kubernetes' service environment variables (``WEB_SERVICE_HOST``, ``WEB_SERVICE_PORT``,
    ``WEB_SERVICE_PORT_<NAME>``) for the Services of a pod's namespace, as they exist at container start.

    Containers cannot reach cluster IPs (a loopback range of the node), so a Service with node ports is
    advertised at ``gateway`` (the Podman bridge's address on the node, where the proxy serves node
    ports) and its node port; others at their cluster IP, reachable from the node's own network."""
    env: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: str((s.get("metadata") or {}).get("name"))):
        spec = svc.get("spec") or {}
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict) and p.get("port")]
        cluster_ip = spec.get("clusterIP")
        if not ports or not cluster_ip or cluster_ip == "None":
            continue
        prefix = str((svc.get("metadata") or {}).get("name", "")).upper().replace("-", "_")
        via_gateway = bool(gateway) and all(p.get("nodePort") for p in ports)
        env[f"{prefix}_SERVICE_HOST"] = str(gateway if via_gateway else cluster_ip)
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["nodePort"] if via_gateway else ports[0]["port"])
        for p in ports:
            if p.get("name"):
                name = str(p["name"]).upper().replace("-", "_")
                env[f"{prefix}_SERVICE_PORT_{name}"] = str(p["nodePort"] if via_gateway else p["port"])
    return env


def container_config(c: Obj, extra_env: dict[str, str] | None = None, pod_spec: Obj | None = None) -> ContainerConfig:
    """``pod_spec`` gives the pod-level security context (runAsUser, fsGroup...) merged under the container's."""
    env = dict(extra_env or {})
    env.update({
        str(e["name"]): str(e.get("value") or "")
        for e in c.get("env") or []
        if isinstance(e, dict) and e.get("name") and "valueFrom" not in e
    })
    cpu, memory = _limit(c.get("resources"), "cpu"), _limit(c.get("resources"), "memory")
    try:
        cpu_limit = cpu_millis(cpu) if cpu is not None else None
        memory_limit = memory_bytes(memory) if memory is not None else None
    except QuantityError:
        cpu_limit = memory_limit = None  # validated by the API; never fail a pod on it here
    return ContainerConfig(
        name=str(c["name"]),
        image=str(c.get("image") or ""),
        command=tuple(str(x) for x in c.get("command") or ()),
        args=tuple(str(x) for x in c.get("args") or ()),
        env=env,
        working_dir=str(c["workingDir"]) if c.get("workingDir") else None,
        cpu_limit_millis=cpu_limit,
        memory_limit_bytes=memory_limit,
        security=security_config(pod_spec or {}, c),
        tty=c.get("tty") is True,
        stdin=c.get("stdin") is True,
        image_pull_policy=str(c.get("imagePullPolicy") or "IfNotPresent"),
        termination_policy=str(c.get("terminationMessagePolicy") or "File"),
    )


def should_restart(policy: str, exit_code: int | None) -> bool:
    """Whether an exited container is started again under the pod's restartPolicy."""
    if policy == RESTART_ALWAYS:
        return True
    if policy == RESTART_ON_FAILURE:
        return exit_code != 0
    return False


def named_port(c: Obj, port: Any) -> int | None:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if isinstance(port, str):
        if port.isdigit():
            return int(port)
        for p in c.get("ports") or []:
            if isinstance(p, dict) and p.get("name") == port:
                return int(p["containerPort"])
    return None


def host_port_for(c: Obj, container_port: int) -> tuple[str | None, int | None]:
    """(hostIP, hostPort) publishing ``container_port``, if any."""
    for p in c.get("ports") or []:
        if isinstance(p, dict) and p.get("containerPort") == container_port and p.get("hostPort"):
            return (str(p["hostIP"]) if p.get("hostIP") else None), int(p["hostPort"])
    return None, None
