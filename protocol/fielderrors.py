"""Field checks shared by the validation of every kind: an error collector with typed checks, name patterns.

Pure: used by ``protocol.validation`` (metadata, the envelope) and by each kind's strategy in
``protocol.kinds`` (its spec and body).
"""

from __future__ import annotations

import re
from typing import Any

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_ANNOTATIONS_BYTES = 256 * 1024
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
"""Ranges of Kubernetes' int32 fields (counts, ports, seconds of probes) and int64 ones (grace periods)."""


class Errors:
    """Collects ``{"field", "message"}`` causes; the checks record an error and return whether the value is good."""

    def __init__(self) -> None:
        self.causes: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.causes.append({"field": path, "message": message})

    def typed(self, obj: Any, path: str, kind: type | tuple[type, ...], *, required: bool = False) -> bool:
        """True when the field is present and of the type; records an error when it is not."""
        value = obj.get(path.rsplit(".", 1)[-1]) if isinstance(obj, dict) else None
        return self.check(value, path, kind, required=required)

    def check(self, value: Any, path: str, kind: type | tuple[type, ...], *, required: bool = False) -> bool:
        if value is None:
            if required:
                self.add(path, "Required value")
            return False
        if isinstance(value, bool) and kind in (int, (int, float), (int, str)):
            self.add(path, f"Invalid type: expected {type_name(kind)}, got boolean")
            return False
        if not isinstance(value, kind):
            self.add(path, f"Invalid type: expected {type_name(kind)}, got {type_name(type(value))}")
            return False
        return True

    def name(self, value: Any, path: str, pattern: re.Pattern[str], what: str, max_len: int) -> None:
        if not self.check(value, path, str, required=True):
            return
        if len(value) > max_len:
            self.add(path, f"must be no more than {max_len} characters")
        elif not pattern.match(value):
            chars = "'-' or '.'" if "subdomain" in what else "'-'"
            self.add(path, f"a lowercase RFC 1123 {what} must consist of lower case alphanumeric characters "
                           f"or {chars}, and must start and end with an alphanumeric character (got {value!r})")

    def integer(self, obj: Any, field: str, path: str, lo: int | None = None,
                hi: int | None = None, *, required: bool = False, bits: int = 32) -> None:
        """An integer field, within ``lo``..``hi`` and always within its type (``bits``: Kubernetes' int32,
        or int64): ``replicas: 2**63-1`` is refused, as the apiserver refuses it when decoding."""
        value = obj.get(field)
        if self.check(value, path, int, required=required):
            low, high = INT64 if bits == 64 else INT32
            if lo is not None and value < lo:
                self.add(path, f"must be greater than or equal to {lo}")
            elif value < low:
                self.add(path, f"must be greater than or equal to {low} (an int{bits})")
            if hi is not None and value > hi:
                self.add(path, f"must be less than or equal to {hi}")
            elif value > high:
                self.add(path, f"must be less than or equal to {high} (an int{bits})")

    def enum(self, obj: Any, field: str, path: str, allowed: tuple[str, ...]) -> None:
        value = obj.get(field)
        if self.check(value, path, str) and value not in allowed:
            self.add(path, f"Unsupported value: {value!r}: supported values: {', '.join(allowed)}")

    def string_map(self, value: Any, path: str) -> None:
        if self.check(value, path, dict):
            for k, v in value.items():
                if not isinstance(v, str):
                    self.add(f"{path}[{k}]", f"Invalid type: expected string, got {type_name(type(v))}")

    def str_list(self, value: Any, path: str) -> None:
        if self.check(value, path, list):
            for i, item in enumerate(value):
                self.check(item, f"{path}[{i}]", str, required=True)

    def items(self, value: Any, path: str, *, required: bool = False) -> list[tuple[str, Any]]:
        if not self.check(value, path, list, required=required):
            return []
        out = []
        for i, item in enumerate(value):
            if self.check(item, f"{path}[{i}]", dict, required=True):
                out.append((f"{path}[{i}]", item))
        return out


def type_name(kind: Any) -> str:
    names = {dict: "object", list: "array", str: "string", int: "integer", float: "number", bool: "boolean"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def qualified_name(e: Errors, key: str, path: str) -> None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        e.add(path, f"prefix part of {key!r} must be a DNS subdomain")
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        e.add(path, f"name part of {key!r} must be 63 characters or less, alphanumeric, '-', '_' or '.', "
                    "starting and ending with an alphanumeric character")


def int_or_percent(e: Errors, obj: Any, field: str, path: str) -> None:
    value = obj.get(field)
    if e.check(value, path, (int, str)) and isinstance(value, str) and not re.fullmatch(r"\d+%", value):
        e.add(path, f"must be an integer or a percentage such as 25% (got {value!r})")
