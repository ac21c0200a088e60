"""The create path's shortcuts give exactly what the plain computations they replace give."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from nats.aio.msg import Msg

from actors.api.service import new_uid
from actors.api.store import delivery_position
from protocol import keys, podfields
from protocol.errors import BadRequest
from protocol.kinds import strategy_for
from protocol.objects import format_time
from protocol.unknown_fields import FieldValidation, apply


def _reference_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("epoch", [0.0, -0.5, -1.0, 1.9999994, 1.9999995, 1.9999999, 1733100000.4,
                                   1733100000.9999996, 1733100001.0, 253402300799.0])
def test_format_time_matches_datetime_at_second_edges(epoch: float) -> None:
    assert format_time(epoch) == _reference_time(epoch)
    assert format_time(epoch) == _reference_time(epoch)  # the cached second's text too


def test_format_time_matches_datetime_in_any_order() -> None:
    rng = random.Random(7)
    epochs = [rng.uniform(-1e9, 4e9) for _ in range(2000)]
    epochs += [rng.randint(0, 4 * 10**9) + rng.choice([0.0, 0.5, 0.9999994, 0.9999995, 0.99999951])
               for _ in range(2000)]
    for epoch in epochs + sorted(epochs):
        assert format_time(epoch) == _reference_time(epoch), epoch


_SAFE = re.compile(r"[-_a-zA-Z0-9]")


def _reference_encode(value: str) -> str:
    return "".join(ch if _SAFE.fullmatch(ch) else f"={ord(ch):02X}" for ch in value)


def test_token_escaping_matches_the_per_character_rule() -> None:
    rng = random.Random(11)
    alphabet = "abcXYZ09-_.=:/ \né"
    for _ in range(5000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        encoded = keys.encode_token(value)
        assert encoded == _reference_encode(value)
        assert keys.decode_token(encoded) == value
    assert keys.decode_token("plain-name_1") == "plain-name_1"
    assert keys.decode_token("a=2Eb=3D") == "a.b="
    with pytest.raises(BadRequest):
        keys.encode_token("")
    with pytest.raises(BadRequest):
        keys.encode_token("name-\u4e2d")


def test_new_uid_is_a_random_version_4_uuid() -> None:
    seen = set()
    for _ in range(2000):
        uid = new_uid()
        parsed = uuid.UUID(uid)
        assert str(parsed) == uid and parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(uid)
    assert len(seen) == 2000


@pytest.mark.parametrize("reply", [
    "$JS.ACK.KV_shoal.consumer.1.12345.77.1733100000000000000.3",
    "$JS.ACK.domain.accounthash.KV_shoal.consumer.1.12345.77.1733100000000000000.3.token",
])
def test_delivery_position_matches_nats_metadata(reply: str) -> None:
    msg = Msg(None, subject="$KV.shoal.pods.default.p", reply=reply, data=b"")  # type: ignore[arg-type]
    md = Msg(None, subject="$KV.shoal.pods.default.p", reply=reply, data=b"").metadata  # type: ignore[arg-type]
    assert delivery_position(msg) == (md.sequence.stream, md.num_pending) == (12345, 3)


def test_unknown_fields_found_the_same_on_every_call() -> None:
    strategy = strategy_for("Pod")
    for _ in range(3):  # the schema's maps are built once, then reused
        pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1}, "extra": 2,
               "spec": {"containers": [{"name": "c", "image": "i", "colour": "red"}], "nope": True}}
        warnings = apply(pod, strategy, FieldValidation.WARN)
        assert sorted(warnings) == sorted(['unknown field "extra"', 'unknown field "metadata.bogus"',
                                           'unknown field "spec.containers[0].colour"', 'unknown field "spec.nope"'])
        assert "extra" not in pod and "nope" not in pod["spec"] and "colour" not in pod["spec"]["containers"][0]


def _reference_findings(spec: Any, prefix: str, status: str) -> list[tuple[str, Any]]:
    """The plain walk over every rule (what ``podfields.findings`` did before it grouped and shortened it)."""
    if not isinstance(spec, dict):
        return []
    out = []
    for rule in podfields.RULES:
        if rule.status != status:
            continue
        targets = ([("", spec)] if rule.scope == "pod"
                   else [(f"{p}.", c) for p, c in podfields._containers(spec, rule.scope)])
        for where, obj in targets:
            for sub, value, parent in podfields._get(obj, rule.path):
                if rule.when(value) and (rule.parent is None or rule.parent(parent)):
                    out.append((f"{prefix}.{where}{sub}", rule))
    if status == "refused":
        out += list(podfields._volume_findings(spec, prefix))
    return out


def test_pod_field_findings_match_the_plain_walk() -> None:
    rng = random.Random(3)
    values: list[Any] = [None, True, False, "Always", "Strict", "Enabled", "Unmasked", "x", 1, [], {}, [1],
                         {"type": "Localhost"}, {"name": "windows"}, {"name": "linux"},
                         {"medium": "Memory", "sizeLimit": "1Gi"}, {"sizeLimit": "1Gi"}]
    keys_ = ["grpc", "postStart", "preStop", "tcpSocket", "sizeLimit", "medium", "type", "claims",
             "terminationGracePeriodSeconds", "recursiveReadOnly"]

    def value(depth: int = 0) -> Any:
        if depth < 2 and rng.random() < 0.3:
            return {k: value(depth + 1) for k in rng.sample(keys_, rng.randint(1, 4))}
        return rng.choice(values)

    rules = podfields.RULES
    pod_fields = sorted({r.path.split(".")[0] for r in rules if r.scope == "pod"})
    container_fields = sorted({r.path.split(".")[0] for r in rules if r.scope != "pod"})
    found = 0
    for _ in range(400):
        spec: dict[str, Any] = {k: value() for k in rng.sample(pod_fields, rng.randint(0, 12))}
        if rng.random() < 0.5:
            spec["securityContext"] = {r.path.split(".")[1]: value() for r in rules
                                       if r.scope == "pod" and r.path.startswith("securityContext.")}
        if rng.random() < 0.4:
            spec["volumes"] = [{"name": "v", rng.choice(["emptyDir", "nfs"]): rng.choice(values[-2:])}
                               for _ in range(rng.randint(0, 3))]
        for field in ("containers", "initContainers"):
            containers: list[Any] = []
            for _ in range(rng.randint(0, 3)):
                c = {k: value() for k in rng.sample(container_fields, rng.randint(0, 10))}
                if rng.random() < 0.5:
                    c["securityContext"] = {r.path.split(".")[1]: value() for r in rules
                                            if r.scope != "pod" and r.path.startswith("securityContext.")}
                if rng.random() < 0.3:
                    c["volumeMounts"] = [{"recursiveReadOnly": rng.choice(["Enabled", None])} for _ in range(2)]
                containers.append(c if rng.random() < 0.95 else "not a map")
            spec[field] = containers
        for status in ("honoured", "warned", "refused"):
            expected = _reference_findings(spec, "spec", status)
            assert list(podfields.findings(spec, "spec", status)) == expected, (spec, status)
            found += len(expected)
    assert found > 1_000  # the specs did set fields of every kind of rule


def test_an_interner_gives_back_the_first_equal_value_and_stays_bounded() -> None:
    from protocol.interning import Interner

    interner: Interner[tuple[str, ...], list[str]] = Interner(2)
    first = ["a"]
    assert interner.get(("a",), first) is first
    assert interner.get(("a",), ["a"]) is first  # an equal key: the first value
    interner.get(("b",), ["b"])
    assert len(interner) == 2
    third = ["c"]
    assert interner.get(("c",), third) is third and len(interner) == 1  # full: it started over
    again = ["a"]
    assert interner.get(("a",), again) is again
    with pytest.raises(ValueError):
        Interner(0)
