"""Secrets encrypted at rest, as Kubernetes' ``EncryptionConfiguration`` (a subset): AES-GCM with named keys.

The configuration file (YAML or JSON, written 0600 by ``shoal up`` into its state dir)::

    kind: EncryptionConfiguration
    apiVersion: apiserver.config.k8s.io/v1
    resources:
      - resources: [secrets]
        providers:
          - aesgcm:
              keys:
                - {name: key2, secret: <base64 of 32 random bytes>}   # the first key encrypts
                - {name: key1, secret: <base64 ...>}                  # every key listed decrypts
          - identity: {}                                              # values stored before encryption

A stored value is ``k8s:enc:aesgcm:v1:<key name>:`` + a 12-byte nonce + the AES-GCM ciphertext of the object
(its msgpack bytes), with the datastore key as associated data, so a value cannot be moved to another key.
Only API actors hold the file; they encrypt on write and decrypt on read (``Store``), and their watch cache
holds objects decrypted, as kube-apiserver's does. Rotation: put a new key first (the old one second),
restart the API actors, call the admin operation ``rewrite-secrets`` (every Secret written again with the new
key), then remove the old key.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocol.errors import InternalError

PREFIX = b"k8s:enc:aesgcm:v1:"
ENCRYPTED_RESOURCES = frozenset({"secrets"})
NONCE_BYTES = 12


class EncryptionConfigError(ValueError):
    """The encryption configuration file is malformed: the API actor refuses to start."""


@dataclass(frozen=True)
class KeyRing:
    """AES-GCM keys by name; ``primary`` encrypts. ``identity``: plaintext values may be read."""

    keys: dict[str, AESGCM]
    primary: str | None
    identity: bool = True
    resources: frozenset[str] = ENCRYPTED_RESOURCES

    @classmethod
    def plaintext(cls) -> KeyRing:
        return cls({}, None)

    @property
    def encrypts(self) -> bool:
        return self.primary is not None

    def applies(self, key: str) -> bool:
        return key.split(".", 1)[0] in self.resources

    def encrypt(self, key: str, value: bytes) -> bytes:
        if self.primary is None or not self.applies(key):
            return value
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.keys[self.primary].encrypt(nonce, value, key.encode())
        return PREFIX + self.primary.encode() + b":" + nonce + sealed

    def decrypt(self, key: str, value: bytes) -> bytes:
        if not value.startswith(PREFIX):
            if value and self.applies(key) and not self.identity:
                raise InternalError(f"{key} is stored unencrypted and the identity provider is not configured")
            return value
        name, sep, rest = value[len(PREFIX):].partition(b":")
        cipher = self.keys.get(name.decode(errors="replace"))
        if not sep or cipher is None or len(rest) < NONCE_BYTES:
            raise InternalError(f"{key} is encrypted with key {name.decode(errors='replace')!r}, which this API "
                                "actor does not have: add it to the encryption configuration")
        try:
            return cipher.decrypt(rest[:NONCE_BYTES], rest[NONCE_BYTES:], key.encode())
        except Exception:
            raise InternalError(f"{key} could not be decrypted (wrong key or damaged value)") from None


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def default_config(name: str = "key1") -> dict[str, Any]:
    return {"kind": "EncryptionConfiguration", "apiVersion": "apiserver.config.k8s.io/v1",
            "resources": [{"resources": ["secrets"],
                           "providers": [{"aesgcm": {"keys": [{"name": name, "secret": new_key()}]}},
                                         {"identity": {}}]}]}


def write_config(path: Path, config: dict[str, Any]) -> None:
    """Write ``config`` readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent=2)


def ensure_config(path: Path) -> Path:
    """The file at ``path``, created with one fresh key when absent (``shoal up``)."""
    if not path.exists():
        write_config(path, default_config())
    return path


def parse_config(config: Any) -> KeyRing:
    if not isinstance(config, dict) or config.get("kind") != "EncryptionConfiguration":
        raise EncryptionConfigError("not an EncryptionConfiguration")
    rules = config.get("resources")
    if not isinstance(rules, list) or len(rules) != 1 or not isinstance(rules[0], dict):
        raise EncryptionConfigError("resources must hold exactly one rule (for secrets)")
    resources = rules[0].get("resources")
    if not isinstance(resources, list) or not resources or not all(r in ENCRYPTED_RESOURCES for r in resources):
        raise EncryptionConfigError(f"resources may only name {sorted(ENCRYPTED_RESOURCES)}")
    providers = rules[0].get("providers")
    if not isinstance(providers, list) or not providers:
        raise EncryptionConfigError("providers must be a non-empty list")
    keys: dict[str, AESGCM] = {}
    primary: str | None = None
    identity = False
    for index, provider in enumerate(providers):
        if not isinstance(provider, dict) or len(provider) != 1:
            raise EncryptionConfigError(f"providers[{index}] must name one provider")
        (kind, body), = provider.items()
        if kind == "identity":
            identity = True
            continue
        if kind != "aesgcm":
            raise EncryptionConfigError(f"providers[{index}]: unsupported provider {kind!r} (aesgcm, identity)")
        for k in (body or {}).get("keys") or []:
            name, secret = (k or {}).get("name"), (k or {}).get("secret")
            if not isinstance(name, str) or not name or ":" in name or not isinstance(secret, str):
                raise EncryptionConfigError(f"providers[{index}]: every key needs a name (no ':') and a secret")
            try:
                raw = base64.b64decode(secret, validate=True)
            except ValueError:
                raise EncryptionConfigError(f"key {name!r}: secret is not base64") from None
            if len(raw) not in (16, 24, 32):
                raise EncryptionConfigError(f"key {name!r}: secret must be 16, 24 or 32 bytes")
            keys[name] = AESGCM(raw)
            if primary is None and index == 0:  # identity first: new values are written in plaintext
                primary = name
    return KeyRing(keys, primary, identity, frozenset(resources))


def load(path: Path | None) -> KeyRing:
    if path is None:
        return KeyRing.plaintext()
    text = path.read_text()
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EncryptionConfigError(f"{path}: {exc}") from None
    return parse_config(config)
