"""``shoal up``'s identities: one NATS user per component, no anonymous access, TLS beyond loopback.

The users and their permissions are the multi-VM deployment's (``runtime.nats_security``), so both run
one set of rules: ``api``, ``scheduler``, ``controller-manager``, ``cloud-controller-manager``, ``gateway``,
``kubelet-<node>``, ``proxy-<node>``, ``dns-<node>`` and ``cli`` (the ``shoal`` tool: an allow-list of API
requests, node services and following the Events and audit streams; no JetStream management, no
``$KV``). Only ``api`` reaches JetStream's datastore streams and the ``shoal_system`` bucket (the token
signing key); no other identity may manage streams, so none can mirror or source them. Private inboxes:
each identity subscribes only ``_INBOX.<user>.>``.

Files, all 0600 under ``<state>/auth`` (the state directory is 0700): ``secrets.json`` (random 32-byte
passwords, kept across restarts; a user missing from it is added), ``nats-auth.conf`` (the server's
``authorization`` block, included by ``<state>/nats-server.conf``) and ``creds/<user>.env``. Components get
their user and password in their environment (not their command line, which every local user can read).
``<state>/context.json`` is the ``cli`` identity for the ``shoal`` tool (``runtime.context``).

When NATS listens beyond loopback (``--host``), its client port serves TLS with a certificate of a CA
made in ``<state>/nats-tls`` (``shoal.kubeconfig.ensure_credentials``, as the gateway's), and every client
verifies it (``SHOAL_TLS_CA``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime import nats_security
from runtime.cluster_config import TlsFiles, tls_block
from runtime.context import CONTEXT_FILE, Context, write_context
from shoal import kubeconfig

AUTH_DIR = "auth"
TLS_DIR = "nats-tls"
CLI_USER = "cli"
SHARED_USERS = ("api", "gateway", CLI_USER, *nats_security.CONTROL_PLANE)
NODE_USERS = ("kubelet", "proxy", "dns")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_users(data: dict[str, Any], node: str) -> dict[str, Any]:
    """Add a password for every user ``shoal up`` runs (pure but for the random passwords)."""
    passwords: dict[str, str] = data.setdefault("passwords", {})
    data.setdefault("nodes", [])
    data["private_inboxes"] = True
    nats_security.ensure_node(data, node)
    for user in (*SHARED_USERS, *(f"{prefix}-{node}" for prefix in NODE_USERS)):
        passwords.setdefault(user, nats_security.new_password())
    return data


@dataclass
class UpAuth:
    """The identities of one ``shoal up`` state directory."""

    state: Path
    node: str
    host: str
    data: dict[str, Any]

    @classmethod
    def ensure(cls, state: Path, node: str, host: str) -> UpAuth:
        """Load ``<state>/auth/secrets.json`` (or make it), add missing users, write every file."""
        directory = state / AUTH_DIR
        secrets_file = directory / nats_security.SECRETS
        data: dict[str, Any] = {}
        if secrets_file.exists():
            try:
                data = nats_security.load_secrets(directory)
            except (OSError, ValueError) as exc:
                raise ValueError(f"{secrets_file} is unreadable ({exc}): remove it to make new credentials") from None
        auth = cls(state, node, host, ensure_users(data, node))
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        if auth.tls is not None:
            kubeconfig.ensure_credentials(state / TLS_DIR, (host,))
        nats_security.write_all(directory, auth.data, (), auth.tls.ca if auth.tls else None)
        return auth

    @property
    def tls(self) -> TlsFiles | None:
        if is_loopback(self.host):
            return None
        creds = kubeconfig.Credentials(self.state / TLS_DIR)
        return TlsFiles(ca=str(creds.ca_cert), cert=str(creds.cert), key=str(creds.key))

    def server_config(self) -> str:
        """What goes into nats-server's config: the users (included from ``auth/``) and TLS."""
        lines = [f'include "{AUTH_DIR}/{nats_security.AUTH_CONF}"']
        if self.tls is not None:
            lines.append(tls_block(self.tls))
        return "\n".join(lines)

    def password(self, user: str) -> str:
        return str(self.data["passwords"][user])

    def env(self, user: str) -> dict[str, str]:
        """The environment a component of ``user`` connects with (``runtime.bus.BusConfig.from_env``)."""
        env = {"SHOAL_USER": user, "SHOAL_PASSWORD": self.password(user)}
        if self.tls is not None:
            env["SHOAL_TLS_CA"] = self.tls.ca
        return env

    def context(self, url: str, cluster: str) -> Context:
        return Context((url,), CLI_USER, self.password(CLI_USER), self.tls.ca if self.tls else None, cluster)

    def write_context(self, url: str, cluster: str) -> Path:
        path = self.state / CONTEXT_FILE
        write_context(path, self.context(url, cluster))
        return path


def user_of(component: str, node: str) -> str:
    """The NATS user of a ``shoal up`` component (``COMPONENTS``' names)."""
    shared = {"api": "api", "scheduler": "scheduler", "controllers": "controller-manager",
              "cloud": "cloud-controller-manager", "gateway": "gateway"}
    if component in shared:
        return shared[component]
    if component in NODE_USERS:
        return f"{component}-{node}"
    raise KeyError(f"no NATS user for the component {component!r}: add it to shoal.up_auth.user_of")
