"""Pure table tests: $(VAR) expansion, env/envFrom resolution, downward API values, pod references."""

from __future__ import annotations

import base64

import pytest

from agents.kubelet.envvars import (
    ConfigError,
    PodFacts,
    container_env,
    expand,
    expand_command,
    field_ref,
    format_map,
    resource_field_ref,
)
from protocol.podrefs import pod_references

VARS = {"A": "alpha", "B": "beta", "EMPTY": ""}


@pytest.mark.parametrize(("text", "expected"), [
    ("$(A)", "alpha"),
    ("x$(A)y$(B)z", "xalphaybetaz"),
    ("$(UNKNOWN)", "$(UNKNOWN)"),            # unknown: left as written
    ("$$(A)", "$(A)"),                       # $$ escapes
    ("$$$(A)", "$alpha"),
    ("$$", "$"),
    ("a$b", "a$b"),                          # a lone $ stays
    ("$(A", "$(A"),                          # unterminated
    ("$", "$"),
    ("end$", "end$"),
    ("$(EMPTY)!", "!"),
    ("$()", "$()"),                          # the empty name is unknown
    ("$(A)$(B)", "alphabeta"),
    ("", ""),
])
def test_expand_as_kubernetes(text: str, expected: str) -> None:
    assert expand(text, VARS.get) == expected


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "labels": {"app": "web", "tier": "front"},
                 "annotations": {"note": 'say "hi"'}},
    "spec": {"nodeName": "n1", "serviceAccountName": "robot", "containers": []},
}
CM = {"kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "shop"},
      "data": {"color": "blue", "size": "L"}, "binaryData": {"bin": b64("\x01")}}
SECRET = {"kind": "Secret", "metadata": {"name": "creds", "namespace": "shop"}, "data": {"password": b64("s3cret")}}
SOURCES = {("ConfigMap", "shop", "cfg"): CM, ("Secret", "shop", "creds"): SECRET,
           ("ConfigMap", "shop", "gone"): None}
FACTS = PodFacts(node_name="n1", pod_ip="127.88.0.5", host_ip="127.0.0.1", node_cpu_millis=2000,
                 node_memory_bytes=4 << 30)


def env_of(container: dict, services: dict | None = None) -> dict[str, str]:
    return container_env(POD, container, SOURCES, FACTS, services)


def test_env_order_override_and_expansion() -> None:
    c = {"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "creds"}, "prefix": "S_"}],
         "env": [{"name": "color", "value": "red"},
                 {"name": "GREETING", "value": "$(color)-$(size)-$(S_password)-$(NOPE)-$$(color)"},
                 {"name": "LATER", "value": "$(AFTER)"}, {"name": "AFTER", "value": "x"},
                 {"name": "SVC", "value": "$(WEB_SERVICE_HOST)"}]}
    env = env_of(c, {"WEB_SERVICE_HOST": "10.0.0.1", "color": "service-loses"})
    assert env["color"] == "red"
    assert env["GREETING"] == "red-L-s3cret-$(NOPE)-$(color)"
    assert env["LATER"] == "$(AFTER)"  # only what is defined before
    assert env["SVC"] == "10.0.0.1" and env["WEB_SERVICE_HOST"] == "10.0.0.1"
    assert env["S_password"] == "s3cret" and env["bin"] == "\x01"


@pytest.mark.parametrize(("value_from", "expected"), [
    ({"configMapKeyRef": {"name": "cfg", "key": "color"}}, "blue"),
    ({"secretKeyRef": {"name": "creds", "key": "password"}}, "s3cret"),
    ({"fieldRef": {"fieldPath": "metadata.name"}}, "web"),
    ({"fieldRef": {"fieldPath": "metadata.namespace"}}, "shop"),
    ({"fieldRef": {"fieldPath": "metadata.uid"}}, "u-1"),
    ({"fieldRef": {"fieldPath": "metadata.labels['tier']"}}, "front"),
    ({"fieldRef": {"fieldPath": "metadata.annotations['note']"}}, 'say "hi"'),
    ({"fieldRef": {"fieldPath": "metadata.labels['missing']"}}, ""),
    ({"fieldRef": {"fieldPath": "spec.nodeName"}}, "n1"),
    ({"fieldRef": {"fieldPath": "spec.serviceAccountName"}}, "robot"),
    ({"fieldRef": {"fieldPath": "status.podIP"}}, "127.88.0.5"),
    ({"fieldRef": {"fieldPath": "status.hostIP"}}, "127.0.0.1"),
    ({"resourceFieldRef": {"resource": "limits.cpu"}}, "2"),        # node capacity when unset
    ({"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}, "4096"),
    ({"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}, "0"),
])
def test_value_from(value_from: dict, expected: str) -> None:
    env = env_of({"name": "c", "env": [{"name": "V", "valueFrom": value_from}]})
    assert env["V"] == expected


def test_resource_field_ref_rounds_up() -> None:
    c = {"name": "c", "resources": {"limits": {"cpu": "250m", "memory": "100Mi"}, "requests": {"memory": "64Mi"}}}
    assert resource_field_ref({"resource": "limits.cpu"}, c, FACTS) == "1"
    assert resource_field_ref({"resource": "limits.cpu", "divisor": "1m"}, c, FACTS) == "250"
    assert resource_field_ref({"resource": "requests.cpu", "divisor": "1m"}, c, FACTS) == "250"  # from limits
    assert resource_field_ref({"resource": "requests.memory", "divisor": "1Mi"}, c, FACTS) == "64"
    with pytest.raises(ConfigError):
        resource_field_ref({"resource": "limits.gpu"}, c, FACTS)


@pytest.mark.parametrize(("env", "message"), [
    ([{"name": "V", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}], 'configmap "gone" not found'),
    ([{"name": "V", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}], 'configmap "absent"'),
    ([{"name": "V", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nokey"}}}],
     "couldn't find key nokey in ConfigMap shop/cfg"),
    ([{"name": "V", "valueFrom": {"secretKeyRef": {"name": "nosecret", "key": "k"}}}], 'secret "nosecret" not found'),
    ([{"name": "V", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}}], "unsupported fieldRef"),
])
def test_missing_required_is_an_error(env: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        env_of({"name": "c", "env": env})


def test_optional_missing_is_skipped() -> None:
    c = {"name": "c",
         "envFrom": [{"configMapRef": {"name": "gone", "optional": True}},
                     {"secretRef": {"name": "nosecret", "optional": True}}],
         "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k", "optional": True}}},
                 {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "no", "optional": True}}},
                 {"name": "C", "value": "c"}]}
    assert env_of(c) == {"C": "c"}
    with pytest.raises(ConfigError, match='configmap "gone" not found'):
        env_of({"name": "c", "envFrom": [{"configMapRef": {"name": "gone"}}]})


def test_command_and_args_expansion() -> None:
    c = {"name": "c", "command": ["sh", "-c", "echo $(A) $$(A) $(Z)"], "args": ["$(B)"]}
    assert expand_command(c, {"A": "1", "B": "2"}) == (("sh", "-c", "echo 1 $(A) $(Z)"), ("2",))


def test_downward_whole_maps_only_in_volumes() -> None:
    assert field_ref(POD, "metadata.labels", FACTS, whole_maps=True) == 'app="web"\ntier="front"'
    assert format_map({"note": 'say "hi"'}) == 'note="say \\"hi\\""'
    with pytest.raises(ConfigError):
        field_ref(POD, "metadata.labels", FACTS)


def test_pod_references() -> None:
    pod = {"metadata": {"namespace": "ns"}, "spec": {
        "serviceAccountName": "sa",
        "imagePullSecrets": [{"name": "pull"}],
        "volumes": [{"name": "a", "configMap": {"name": "cm1"}}, {"name": "b", "secret": {"secretName": "s1"}},
                    {"name": "c", "persistentVolumeClaim": {"claimName": "claim"}},
                    {"name": "d", "projected": {"sources": [{"configMap": {"name": "cm2"}}, {"secret": {"name": "s2"}},
                                                            {"downwardAPI": {"items": []}}]}},
                    {"name": "e", "emptyDir": {}}],
        "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s3"}}]}],
        "containers": [{"name": "c", "env": [{"name": "X",
                                              "valueFrom": {"configMapKeyRef": {"name": "cm3", "key": "k"}}},
                                             {"name": "Y", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "envFrom": [{"configMapRef": {"name": "cm4"}}]}]}}
    assert pod_references(pod) == {
        ("ServiceAccount", "ns", "sa"), ("Secret", "ns", "pull"), ("ConfigMap", "ns", "cm1"), ("Secret", "ns", "s1"),
        ("PersistentVolumeClaim", "ns", "claim"), ("ConfigMap", "ns", "cm2"), ("Secret", "ns", "s2"),
        ("Secret", "ns", "s3"), ("ConfigMap", "ns", "cm3"), ("ConfigMap", "ns", "cm4")}
    assert pod_references({"spec": "junk"}) == frozenset()
