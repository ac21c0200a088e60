"""A container's environment, command and args as Kubernetes' kubelet computes them. Pure.

``container_env`` follows the kubelet's ``makeEnvironmentVariables``: ``envFrom`` sources first (in order,
with their ``prefix``), then ``env`` in order (a later name overrides an earlier one); a literal ``value``
is ``$(VAR)``-expanded against what is defined so far (then the service variables); ``valueFrom``
(configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef) is not expanded; service variables come last
and never override. ``expand_command`` expands ``command``/``args`` against the final environment.

The objects referenced are passed in (``Sources``, fetched by the caller): a missing object or key that
is not ``optional`` raises ``ConfigError`` (the container waits in ``CreateContainerConfigError``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from protocol.objects import Obj, meta, name_of, namespace_of, uid_of
from protocol.podrefs import CONFIG_MAP, SECRET, Ref
from protocol.quantity import QuantityError, cpu_millis, memory_bytes

Sources = Mapping[Ref, Obj | None]
"""The referenced objects the caller fetched: (kind, namespace, name) -> object, None when not found."""


class ConfigError(Exception):
    """A container's configuration cannot be built (a missing ConfigMap/Secret or key, a bad field path)."""


@dataclass(frozen=True, slots=True)
class PodFacts:
    """What the kubelet knows about a pod beyond its spec: where it runs and the node's capacity (the value
    of a resource limit the container does not set, as Kubernetes uses the node's allocatable)."""

    node_name: str = ""
    pod_ip: str = ""
    host_ip: str = ""
    node_cpu_millis: int = 0
    node_memory_bytes: int = 0


# -- $(VAR) expansion (k8s.io/kubernetes/third_party/forked/golang/expansion) --------------------


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """``$(NAME)`` becomes the value of NAME, left as written when NAME is unknown; ``$$`` is one ``$``;
    any other ``$`` (and an unterminated ``$(``) stays as it is."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1:]
            if rest[0] == "$":
                out.append("$")
                advance = 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = rest[1:close]
                    value = lookup(name)
                    out.append(value if value is not None else f"$({name})")
                    advance = close + 1
            else:
                out.append("$" + rest[0])
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


# -- values of referenced objects ------------------------------------------------------------------


def config_map_data(cm: Obj) -> dict[str, bytes]:
    """A ConfigMap's ``data`` (text) and ``binaryData`` (base64) as bytes by key."""
    out = {str(k): str(v).encode() for k, v in (cm.get("data") or {}).items()}
    for k, v in (cm.get("binaryData") or {}).items():
        out[str(k)] = _b64(v, f"binaryData key {k} of ConfigMap {namespace_of(cm)}/{name_of(cm)}")
    return out


def secret_data(secret: Obj) -> dict[str, bytes]:
    """A Secret's ``data`` (base64) as bytes by key (``stringData`` is folded into ``data`` by the API)."""
    out = {str(k): _b64(v, f"key {k} of Secret {namespace_of(secret)}/{name_of(secret)}")
           for k, v in (secret.get("data") or {}).items()}
    for k, v in (secret.get("stringData") or {}).items():
        out[str(k)] = str(v).encode()
    return out


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{what} is not valid base64") from None


def object_data(kind: str, namespace: str, name: str, sources: Sources) -> dict[str, bytes] | None:
    """The data of the referenced ConfigMap/Secret, None when it does not exist."""
    obj = sources.get((kind, namespace, name))
    if obj is None:
        return None
    return config_map_data(obj) if kind == CONFIG_MAP else secret_data(obj)


def not_found(kind: str, name: str) -> str:
    return f'{kind.lower()} "{name}" not found'


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


# -- downward API -----------------------------------------------------------------------------------

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")


def format_map(values: Mapping[str, Any]) -> str:
    """Labels or annotations as a downwardAPI file: ``key="value"`` lines, sorted (Kubernetes' FormatMap)."""
    return "\n".join(f"{k}={json.dumps(str(values[k]), ensure_ascii=False)}" for k in sorted(values))


def field_ref(pod: Obj, path: str, facts: PodFacts, *, whole_maps: bool = False) -> str:
    """The value of a ``fieldRef.fieldPath``. ``whole_maps``: ``metadata.labels``/``annotations`` as a
    whole are allowed (downwardAPI volumes only, as in Kubernetes)."""
    m = meta(pod)
    spec = pod.get("spec") or {}
    simple: dict[str, Callable[[], str]] = {
        "metadata.name": lambda: name_of(pod),
        "metadata.namespace": lambda: namespace_of(pod) or "default",
        "metadata.uid": lambda: uid_of(pod),
        "spec.nodeName": lambda: str(spec.get("nodeName") or facts.node_name),
        "spec.serviceAccountName": lambda: str(spec.get("serviceAccountName") or spec.get("serviceAccount") or ""),
        "status.podIP": lambda: facts.pod_ip,
        "status.podIPs": lambda: facts.pod_ip,
        "status.hostIP": lambda: facts.host_ip,
        "status.hostIPs": lambda: facts.host_ip,
    }
    if path in simple:
        return simple[path]()
    subscript = _SUBSCRIPT.match(path)
    if subscript:
        return str((m.get(subscript.group(1)) or {}).get(subscript.group(2), ""))
    if whole_maps and path in ("metadata.labels", "metadata.annotations"):
        return format_map(m.get(path.split(".")[1]) or {})
    raise ConfigError(f"unsupported fieldRef.fieldPath {path!r}")


def _resource(c: Obj, section: str, name: str) -> Any:
    resources = c.get("resources") or {}
    return (resources.get(section) or {}).get(name) if isinstance(resources, dict) else None


def resource_field_ref(ref: Obj, container: Obj, facts: PodFacts) -> str:
    """A ``resourceFieldRef``: the container's request or limit (limits default to the node's capacity),
    divided by ``divisor`` and rounded up, as Kubernetes' ExtractContainerResourceValue."""
    resource = str(ref.get("resource") or "")
    section, _, name = resource.partition(".")
    if section not in ("limits", "requests") or name not in ("cpu", "memory"):
        raise ConfigError(f"unsupported resourceFieldRef.resource {resource!r} (cpu and memory only)")
    value = _resource(container, section, name)
    if value is None and section == "requests":
        value = _resource(container, "limits", name)  # requests default to limits
    try:
        if name == "cpu":
            amount = cpu_millis(value) if value is not None else (facts.node_cpu_millis if section == "limits" else 0)
            divisor = cpu_millis(ref.get("divisor") or "1")
        else:
            amount = memory_bytes(value) if value is not None else (
                facts.node_memory_bytes if section == "limits" else 0)
            divisor = memory_bytes(ref.get("divisor") or "1")
    except QuantityError as exc:
        raise ConfigError(f"resourceFieldRef {resource}: {exc}") from None
    if divisor <= 0:
        raise ConfigError(f"resourceFieldRef {resource}: divisor must be positive")
    return str(math.ceil(amount / divisor))


# -- the environment --------------------------------------------------------------------------------


def _key_ref(kind: str, ref: Obj, namespace: str, sources: Sources) -> str | None:
    """A configMapKeyRef/secretKeyRef's value; None when optional and missing."""
    name, key, optional = str(ref.get("name") or ""), str(ref.get("key") or ""), bool(ref.get("optional"))
    data = object_data(kind, namespace, name, sources)
    if data is None:
        if optional:
            return None
        raise ConfigError(not_found(kind, name))
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return _text(data[key])


def container_env(pod: Obj, container: Obj, sources: Sources, facts: PodFacts,
                  service_env: Mapping[str, str] | None = None) -> dict[str, str]:
    namespace = namespace_of(pod) or "default"
    services = dict(service_env or {})
    env: dict[str, str] = {}

    def lookup(name: str) -> str | None:
        return env[name] if name in env else services.get(name)

    for source in container.get("envFrom") or []:
        if not isinstance(source, dict):
            continue
        prefix = str(source.get("prefix") or "")
        for kind, field in ((CONFIG_MAP, "configMapRef"), (SECRET, "secretRef")):
            ref = source.get(field)
            if not isinstance(ref, dict):
                continue
            name = str(ref.get("name") or "")
            data = object_data(kind, namespace, name, sources)
            if data is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(not_found(kind, name))
            for key, raw in data.items():
                env[prefix + key] = _text(raw)
    for var in container.get("env") or []:
        if not isinstance(var, dict) or not var.get("name"):
            continue
        name = str(var["name"])
        value_from = var.get("valueFrom")
        value = str(var.get("value") or "")
        if value:
            value = expand(value, lookup)
        elif isinstance(value_from, dict):
            resolved = _value_from(value_from, pod, container, namespace, sources, facts)
            if resolved is None:
                continue
            value = resolved
        env[name] = value
    for name, service_value in services.items():
        env.setdefault(name, service_value)
    return env


def _value_from(value_from: Obj, pod: Obj, container: Obj, namespace: str, sources: Sources,
                facts: PodFacts) -> str | None:
    if isinstance(value_from.get("configMapKeyRef"), dict):
        return _key_ref(CONFIG_MAP, value_from["configMapKeyRef"], namespace, sources)
    if isinstance(value_from.get("secretKeyRef"), dict):
        return _key_ref(SECRET, value_from["secretKeyRef"], namespace, sources)
    if isinstance(value_from.get("fieldRef"), dict):
        return field_ref(pod, str(value_from["fieldRef"].get("fieldPath") or ""), facts)
    if isinstance(value_from.get("resourceFieldRef"), dict):
        return resource_field_ref(value_from["resourceFieldRef"], container, facts)
    raise ConfigError(f"unsupported valueFrom {sorted(value_from)}")


def expand_command(container: Obj, env: Mapping[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``command`` and ``args`` with ``$(VAR)`` expanded against the container's final environment."""
    def one(items: Any) -> tuple[str, ...]:
        return tuple(expand(str(x), env.get) for x in items or ())

    return one(container.get("command")), one(container.get("args"))
