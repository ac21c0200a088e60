"""Label and field selectors, parsed once and matched purely.

Label selector strings follow kubectl: ``app=web,tier!=db,env in (a,b),track notin (x),release,!legacy``.
``LabelSelector`` objects (``matchLabels``/``matchExpressions``) convert to the same requirements.
Field selectors support ``=``, ``==`` and ``!=`` on dotted paths such as ``spec.nodeName``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocol.errors import BadRequest

_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[A-Za-z0-9_./-]+)\s*")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" match objects without the label too, as in Kubernetes
        return not present or labels[self.key] not in self.values


@dataclass(frozen=True, slots=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        parts = []
        for r in self.requirements:
            if r.op in ("=", "!="):
                parts.append(f"{r.key}{r.op}{r.values[0]}")
            elif r.op == "exists":
                parts.append(r.key)
            elif r.op == "!":
                parts.append(f"!{r.key}")
            else:
                parts.append(f"{r.key} {r.op} ({','.join(r.values)})")
        return ",".join(parts)


EVERYTHING = Selector()


def _tokens(text: str) -> list[str]:
    pos, out = 0, []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise BadRequest(f"cannot parse selector {text!r} at position {pos}")
        out.append(m.group(1))
        pos = m.end()
    return out


def parse_label_selector(text: str | None) -> Selector:
    if not text or not text.strip():
        return EVERYTHING
    toks, i, reqs = _tokens(text), 0, []

    def take() -> str:
        nonlocal i
        if i >= len(toks):
            raise BadRequest(f"selector {text!r} ends too early")
        i += 1
        return toks[i - 1]

    while i < len(toks):
        tok = take()
        if tok == "!":
            reqs.append(Requirement(take(), "!"))
        else:
            key = tok
            nxt = toks[i] if i < len(toks) else ","
            if nxt == ",":
                reqs.append(Requirement(key, "exists"))
            elif nxt in ("=", "==", "!="):
                take()
                value = take() if i < len(toks) and toks[i] != "," else ""
                reqs.append(Requirement(key, "!=" if nxt == "!=" else "=", (value,)))
            elif nxt in ("in", "notin"):
                take()
                if take() != "(":
                    raise BadRequest(f"selector {text!r}: expected '(' after {nxt}")
                values: list[str] = []
                while (v := take()) != ")":
                    if v != ",":
                        values.append(v)
                reqs.append(Requirement(key, nxt, tuple(values)))
            else:
                raise BadRequest(f"selector {text!r}: unexpected {nxt!r} after {key!r}")
        if i < len(toks):
            if toks[i] != ",":
                raise BadRequest(f"selector {text!r}: expected ',' before {toks[i]!r}")
            i += 1
    return Selector(tuple(reqs))


def from_label_selector(obj: Mapping[str, Any] | None) -> Selector:
    """Convert a ``LabelSelector`` (matchLabels + matchExpressions). ``None`` selects everything."""
    if not obj:
        return EVERYTHING
    reqs = [Requirement(k, "=", (str(v),)) for k, v in sorted((obj.get("matchLabels") or {}).items())]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in obj.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""))
        if op is None:
            raise BadRequest(f"unknown selector operator {expr.get('operator')!r}")
        reqs.append(Requirement(expr["key"], op, tuple(str(v) for v in expr.get("values") or ())))
    return Selector(tuple(reqs))


def spec_selector(obj: Mapping[str, Any]) -> Selector:
    """The ``LabelSelector`` at ``spec.selector`` of a workload (Deployment, ReplicaSet, DaemonSet, ...)."""
    return from_label_selector((obj.get("spec") or {}).get("selector"))


def from_match_labels(labels: Mapping[str, str] | None) -> Selector:
    """Equality selectors, as ReplicationController and Service use them. Empty selects nothing."""
    if not labels:
        return Selector((Requirement("", "exists"),))  # no object has the empty label key
    return Selector(tuple(Requirement(k, "=", (str(v),)) for k, v in sorted(labels.items())))


@dataclass(frozen=True, slots=True)
class FieldSelector:
    requirements: tuple[tuple[str, bool, str], ...] = ()  # (path, equal, value)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all((field_value(obj, path) == value) == equal for path, equal, value in self.requirements)

    def value_of(self, path: str) -> str | None:
        """The value a selector pins ``path`` to with ``=``, if it does (used to index watches)."""
        for p, equal, value in self.requirements:
            if p == path and equal:
                return value
        return None


def field_value(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    return "" if cur is None else str(cur)


def parse_field_selector(text: str | None) -> FieldSelector:
    if not text or not text.strip():
        return FieldSelector()
    reqs = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*([^,]*?)\s*", part)
        if not m:
            raise BadRequest(f"cannot parse field selector {part!r}: use path=value or path!=value")
        reqs.append((m.group(1), m.group(2) != "!=", m.group(3)))
    return FieldSelector(tuple(reqs))
