"""Credentials for the Kubernetes API gateway and the kubeconfig that points kubectl at it.

``ensure_credentials(dir)`` makes, once, in ``<state>/gateway``: a CA (``ca.crt``/``ca.key``, EC P-256, ten
years), a serving certificate for ``localhost``/``127.0.0.1``/``::1`` and the addresses given
(``server.crt``/``server.key``, signed by the CA) and the cluster owner's bearer token (``admin.token``);
keys and the token are 0600. ``kubeconfig(...)`` is a kubeconfig with a ``shoal`` cluster, user and context;
``merge_into(path, ...)`` writes it into an existing kubeconfig (``$KUBECONFIG``'s first file or
``~/.kube/config``), replacing only the ``shoal`` entries and making ``shoal`` the current context, as kind does.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from protocol.network import DEFAULT_SERVICE_CIDR

NAME = "shoal"


@dataclass(frozen=True)
class Credentials:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def key(self) -> Path:
        return self.directory / "server.key"

    @property
    def token_file(self) -> Path:
        return self.directory / "admin.token"

    def token(self) -> str:
        return self.token_file.read_text().strip()


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


IN_CLUSTER_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                    str(ipaddress.ip_network(DEFAULT_SERVICE_CIDR).network_address + 1))
"""What pods call the API by (the ``kubernetes`` Service's names and cluster IP): on every serving certificate."""


def _names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(("localhost", "127.0.0.1", "::1", *IN_CLUSTER_NAMES, *hosts)):
        if host in ("", "0.0.0.0", "::"):
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def ensure_credentials(directory: Path, hosts: tuple[str, ...] = ()) -> Credentials:
    """Make the CA, serving certificate and admin token unless they exist (kept across restarts)."""
    creds = Credentials(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    if not (creds.ca_cert.exists() and (directory / "ca.key").exists()):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shoal-ca")])
        ca = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=3650))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False, encipher_only=False,
                                           decipher_only=False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        _write(directory / "ca.key", _key_pem(ca_key), private=True)
        _write(creds.ca_cert, ca.public_bytes(serialization.Encoding.PEM))
        creds.cert.unlink(missing_ok=True)
    if not (creds.cert.exists() and creds.key.exists()) or not _covers(creds.cert, hosts):
        signer = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
        if not isinstance(signer, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / 'ca.key'} is not the EC key `shoal up` makes: remove {directory}")
        ca = x509.load_pem_x509_certificate(creds.ca_cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shoal-gateway")]))
                .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=825))
                .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(signer, hashes.SHA256()))
        _write(creds.key, _key_pem(key), private=True)
        _write(creds.cert, cert.public_bytes(serialization.Encoding.PEM))
    if not creds.token_file.exists():
        _write(creds.token_file, (secrets.token_urlsafe(32) + "\n").encode(), private=True)
    return creds


def issue_client_certificate(creds: Credentials, user: str, groups: tuple[str, ...] = (),
                             days: int = 365) -> tuple[bytes, bytes]:
    """A client certificate for ``user`` (its common name) in ``groups`` (its organizations), signed by the
    cluster CA, as Kubernetes reads them: ``(certificate PEM, key PEM)``."""
    signer = serialization.load_pem_private_key((creds.directory / "ca.key").read_bytes(), None)
    if not isinstance(signer, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{creds.directory / 'ca.key'} is not the EC key `shoal up` makes")
    ca = x509.load_pem_x509_certificate(creds.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups),
                         x509.NameAttribute(NameOID.COMMON_NAME, user)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(signer, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _covers(cert_file: Path, hosts: tuple[str, ...]) -> bool:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    present = {str(n.value) for n in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value}
    return all(str(n.value) in present for n in _names(hosts))


def kubeconfig(server: str, creds: Credentials) -> dict[str, Any]:
    ca = base64.b64encode(creds.ca_cert.read_bytes()).decode()
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": NAME, "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": NAME, "user": {"token": creds.token()}}],
        "contexts": [{"name": NAME, "context": {"cluster": NAME, "user": NAME}}],
        "current-context": NAME,
    }


def default_path() -> Path:
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    return Path.home() / ".kube" / "config"


def merge(existing: dict[str, Any] | None, ours: dict[str, Any]) -> dict[str, Any]:
    """``existing`` with ``ours``' cluster, user and context replacing entries of the same name; pure."""
    merged = dict(existing or {})
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    for section in ("clusters", "users", "contexts"):
        names = {entry["name"] for entry in ours[section]}
        kept = [e for e in merged.get(section) or [] if isinstance(e, dict) and e.get("name") not in names]
        merged[section] = kept + ours[section]
    merged["current-context"] = ours["current-context"]
    return merged


def merge_into(path: Path, ours: dict[str, Any]) -> None:
    existing = yaml.safe_load(path.read_text()) if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, yaml.safe_dump(merge(existing if isinstance(existing, dict) else None, ours),
                                sort_keys=False).encode(), private=True)
