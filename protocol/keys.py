"""The datastore's key scheme: ``<plural>.<namespace>.<name>`` in the JetStream KV bucket ``shoal``.

Cluster-scoped objects use ``_`` as their namespace token (no namespace can be named ``_``). Each token
is a whole NATS subject token, so a consumer filtered on ``$KV.shoal.pods.default.*`` gets exactly the
pods of ``default`` and ``$KV.shoal.pods.>`` every pod: the server filters, not the client.
Names may contain characters NATS keys or tokens do not allow (``.`` above all): every character
outside ``[-_a-zA-Z0-9]`` is written ``=XX`` (its hexadecimal code), ``=`` itself included.
"""

from __future__ import annotations

import re

from protocol.errors import BadRequest
from protocol.kinds import KindInfo

BUCKET = "shoal"
CLUSTER_SCOPE = "_"
KV_SUBJECT_PREFIX = f"$KV.{BUCKET}."

_ALL_SAFE = re.compile(r"[-_a-zA-Z0-9]+")
_UNSAFE = re.compile(r"[^-_a-zA-Z0-9]")
_WIDE = re.compile(r"[^\x00-\xff]")
_ESCAPE = re.compile(r"=([0-9A-F]{2})")


def encode_token(value: str) -> str:
    if not value:
        raise BadRequest("empty name or namespace")
    if _ALL_SAFE.fullmatch(value):  # most names: nothing to escape
        return value
    wide = _WIDE.search(value)
    if wide is not None:
        raise BadRequest(f"character {wide.group()!r} is not allowed in names: {value!r}")
    return _UNSAFE.sub(_escaped, value)  # the scan in C, a call per character escaped


def _escaped(match: re.Match[str]) -> str:
    return f"={ord(match.group()):02X}"


def decode_token(token: str) -> str:
    if "=" not in token:  # nothing escaped
        return token
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), token)


def namespace_token(info: KindInfo, namespace: str | None) -> str:
    if not info.namespaced:
        return CLUSTER_SCOPE
    if not namespace:
        raise BadRequest(f"{info.kind} is namespaced: a namespace is required")
    return encode_token(namespace)


def object_key(info: KindInfo, namespace: str | None, name: str) -> str:
    return f"{info.plural}.{namespace_token(info, namespace)}.{encode_token(name)}"


def parse_key(key: str) -> tuple[str, str | None, str]:
    """Split a key into (plural, namespace or None, name)."""
    parts = key.split(".")
    if len(parts) != 3:
        raise ValueError(f"not a Shoal object key: {key!r}")
    plural, ns, name = parts
    return plural, (None if ns == CLUSTER_SCOPE else decode_token(ns)), decode_token(name)
