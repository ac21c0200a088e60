"""NATS users and subject permissions for a Shoal cluster: one user per component, least privilege.

Pure: ``*_permissions`` build :class:`Permissions`, ``render_authorization`` writes the
``authorization { users = [...] }`` block for ``NatsServerConfig.extra`` (or ``include`` from the
server config). Kubelets write only through their node-scoped subjects ``shoal.node.<N>.api.>``, which
API actors check (``actors/api/noderestriction.py``). The small CLI keeps generated passwords in a
JSON secrets file and renders the block and one env file per component from it::

    python -m runtime.nats_security init   --dir /etc/shoal [--nodes n1,n2]   # secrets, auth.conf, creds/*.env
    python -m runtime.nats_security add-node --dir /etc/shoal NODE             # one more kubelet + proxy user
    python -m runtime.nats_security render --dir /etc/shoal                    # auth.conf again from secrets

Users authenticate with user + password (plain users in the server config: no JWT resolver to run).
Passwords are random 32-byte tokens, files are 0600. Every user lives in the default account, so
JetStream and the KV bucket are shared; what a user may do is its subject permissions.

Inboxes: with ``private_inboxes`` (the default for new secrets) each user may subscribe only
``_INBOX.<user>.>``, so nobody overhears replies meant for others; ``runtime/bus.py`` connects every
client that has a user name with ``inbox_prefix="_INBOX.<user>"`` (see ``inbox_prefix``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.keys import encode_token
from protocol.rbac_bootstrap import COMPONENT_USERS
from protocol.subjects import (
    API_PREFIX,
    AUDIT_PREFIX,
    AUDIT_STREAM,
    EVENTS_PREFIX,
    EVENTS_STREAM,
    USER_API_WILDCARD,
    user_api_prefix,
)

INBOX = "_INBOX"
SYSTEM_BUCKET = "shoal_system"
"""The API actors' private KV bucket (the token signing key): nobody else may read or write it."""
_SYS_STREAM = f"KV_{SYSTEM_BUCKET}"
SYSTEM_DENY = (f"$KV.{SYSTEM_BUCKET}.>", f"$JS.API.DIRECT.GET.{_SYS_STREAM}", f"$JS.API.DIRECT.GET.{_SYS_STREAM}.>",
               f"$JS.API.STREAM.*.{_SYS_STREAM}", f"$JS.API.STREAM.*.*.{_SYS_STREAM}",
               f"$JS.API.CONSUMER.*.{_SYS_STREAM}", f"$JS.API.CONSUMER.*.{_SYS_STREAM}.>",
               f"$JS.API.CONSUMER.*.*.{_SYS_STREAM}", f"$JS.API.CONSUMER.*.*.{_SYS_STREAM}.>")
STREAM_MANAGEMENT = ("$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>")
"""Creating or changing a stream: a stream can mirror or source ``KV_shoal_system`` (the signing keys) or
``KV_shoal``, copying them out; the streams are the API actors' (issue 18, finding 3)."""
NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_AUTHORIZED_PLURALS = ("secrets", "configmaps", "persistentvolumeclaims", "persistentvolumes", "serviceaccounts")
CONTROL_PLANE = ("scheduler", "controller-manager", "cloud-controller-manager")
"""Components that act through the API as themselves: each publishes API requests only on its own
identity-scoped subjects ``shoal.user.<its Kubernetes user>.api.>`` (``COMPONENT_USERS``), where API actors
authorize them with that user's RBAC role (``system:kube-scheduler``, ...); they never touch JetStream
directly."""


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    publish_deny: tuple[str, ...] = ()
    allow_responses: bool = False


@dataclass(frozen=True)
class User:
    name: str
    password: str
    permissions: Permissions = field(default_factory=Permissions)


def inbox_prefix(user: str) -> str:
    """The reply-inbox prefix a client of ``user`` uses when inboxes are private."""
    return f"{INBOX}.{encode_token(user)}"


def _inboxes(user: str, private: bool) -> str:
    return f"{inbox_prefix(user)}.>" if private else f"{INBOX}.>"


def _health(actor: str) -> tuple[str, ...]:
    return (f"shoal.health.{actor}", f"shoal.health.{actor}.*")


def api_permissions(*, private_inboxes: bool = False) -> Permissions:
    """API actors: JetStream (the KV bucket, streams, direct gets), events, serving every request."""
    _ = private_inboxes  # API actors answer everyone: they publish to every inbox in either mode
    return Permissions(
        publish=("$JS.API.>", "$JS.FC.>", "$JS.ACK.>", "$KV.shoal.>", f"$KV.{SYSTEM_BUCKET}.>",
                 f"{EVENTS_PREFIX}.>", "shoal.audit.>", "shoal.changes.>", f"{INBOX}.>"),
        subscribe=(f"{API_PREFIX}.>", "shoal.node.*.api.>", USER_API_WILDCARD, "shoal.watchctl.>", f"{INBOX}.>",
                   *_health("api")),
    )


def control_plane_permissions(actor: str, *, private_inboxes: bool = False) -> Permissions:
    """Scheduler, controller manager, cloud controller manager: API requests on their own identity-scoped
    subjects only (``shoal.user.<user>.api.>``: the API derives who asks from the subject and authorizes it
    with RBAC; not ``shoal.api.>``, whose requests are served as trusted), and recording Events (published
    straight to the ``SHOAL_EVENTS`` stream, their store); no other JetStream. The controller manager also
    asks kubelets for pod usage (``shoal.node.<N>.metrics``, for the HPA controller)."""
    metrics = ("shoal.node.*.metrics",) if actor == "controller-manager" else ()
    return Permissions(
        publish=(f"{user_api_prefix(COMPONENT_USERS[actor])}.>", "shoal.watchctl.>", f"{EVENTS_PREFIX}.>", *metrics),
        subscribe=(_inboxes(actor, private_inboxes), *_health(actor)),
        allow_responses=True,
    )


def kubelet_permissions(node: str, *, private_inboxes: bool = False) -> Permissions:
    """Node ``node``'s kubelet: reads, and writes only through its node-scoped subjects
    ``shoal.node.<N>.api.>``, where API actors allow nothing but its own Node, its Lease, Events and the
    pods bound to it (``actors/api/noderestriction.py``); and Events, published straight to their stream
    (as Kubernetes' NodeRestriction, a kubelet may record Events about any object)."""
    n = encode_token(node)
    user = f"kubelet-{node}"
    publish = [
        f"shoal.node.{n}.api.>", f"{EVENTS_PREFIX}.>",
        f"{API_PREFIX}.get.>", f"{API_PREFIX}.list.>", f"{API_PREFIX}.watch.>",
        "shoal.watchctl.>",
    ]
    # the logs service streams its answer to the requester's inbox (several messages, for as long as a
    # follow lasts), which ``allow_responses`` cannot express: the kubelet publishes to inboxes
    # Secrets, ConfigMaps, PVCs and ServiceAccounts only through the node-scoped subjects, where the API
    # actor allows what the node's pods reference (Kubernetes' Node authorizer)
    deny = tuple(f"{API_PREFIX}.{verb}.{plural}.>" for verb in ("get", "list", "watch")
                 for plural in NODE_AUTHORIZED_PLURALS)
    return Permissions(
        publish=(*publish, f"{INBOX}.>"),
        subscribe=(_inboxes(user, private_inboxes), f"shoal.node.{n}.>", *_health("kubelet")),
        publish_deny=deny,
    )


SERVICE_READER_PLURALS = ("services", "endpoints", "endpointslices", "nodes")
"""What a node's proxy and cluster DNS read: Services and their endpoints, and Nodes (DNS reads its own
node's podCIDR). Not Secrets, ConfigMaps, Pods or anything else (Kubernetes' system:node-proxier role)."""


def _reads(plurals: tuple[str, ...]) -> tuple[str, ...]:
    """get, list and watch of these resources only (and the watches' keep-alives)."""
    return (*(f"{API_PREFIX}.{verb}.{plural}.>" for verb in ("get", "list", "watch") for plural in plurals),
            "shoal.watchctl.>")


def proxy_permissions(node: str, *, private_inboxes: bool = False) -> Permissions:
    """A node's proxy: reads Services, Endpoints and Nodes only."""
    return Permissions(
        publish=_reads(SERVICE_READER_PLURALS),
        subscribe=(_inboxes(f"proxy-{node}", private_inboxes), *_health("proxy")),
        allow_responses=True,
    )


def gateway_permissions(*, private_inboxes: bool = False) -> Permissions:
    """The Kubernetes API gateway: any API request (it acts for the users it authenticates), and a node's
    logs service (``kubectl logs``), whose lines the kubelet streams to the gateway's inbox, and its exec and
    port-forward streams (``runtime/node_stream.py``)."""
    return Permissions(
        publish=(f"{API_PREFIX}.>", "shoal.watchctl.>", "shoal.node.*.logs", "shoal.node.*.exec", "shoal.node.*.attach",
                 "shoal.node.*.portforward", "shoal.node.*.stream.>", "shoal.node.*.metrics"),
        subscribe=(_inboxes("gateway", private_inboxes), *_health("gateway")),
        allow_responses=True,
    )


def reader_permissions(actor: str, user: str, *, private_inboxes: bool = False) -> Permissions:
    """A component that only reads Services, Endpoints and Nodes through the API (the cluster DNS server
    ``dns-<N>``): get, list, watch of those and their keep-alives; nothing else."""
    return Permissions(
        publish=_reads(SERVICE_READER_PLURALS),
        subscribe=(_inboxes(user, private_inboxes), *_health(actor)),
        allow_responses=True,
    )


FOLLOWABLE_STREAMS = (EVENTS_STREAM, AUDIT_STREAM)
"""The JetStream streams a client other than an API actor may follow (read, with its own consumers):
Events and the audit records. Not the datastore's (``KV_shoal``, ``KV_shoal_system``, ``SHOAL_CHANGES``)."""


def _follow(stream: str) -> tuple[str, ...]:
    """What following ``stream`` with a JetStream consumer takes: its info, consumers of it (create,
    info, delete, next), direct and stored-message gets, flow control and acks; no stream management."""
    return (f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.CONSUMER.CREATE.{stream}",
            f"$JS.API.CONSUMER.CREATE.{stream}.>", f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.INFO.{stream}.>", f"$JS.API.CONSUMER.DELETE.{stream}.>",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>", f"$JS.API.DIRECT.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}.>",
            f"$JS.API.STREAM.MSG.GET.{stream}", f"$JS.FC.{stream}.>", f"$JS.ACK.{stream}.>")


def cli_permissions(user: str = "cli", *, private_inboxes: bool = True) -> Permissions:
    """The cluster owner's ``shoal`` tool on a ``shoal up`` cluster: an allow-list, not ``>`` minus some.
    Any API request (it is the cluster's admin through the API, as kubectl with cluster-admin), a node's
    logs, exec, attach, port-forward and metrics services (as the gateway), following the Events and audit
    streams, pinging health. No JetStream stream management at all (so no stream can mirror or source
    ``KV_shoal_system`` or ``KV_shoal``), no ``$KV.>``, no other client's inbox."""
    follow = tuple(subject for stream in FOLLOWABLE_STREAMS for subject in _follow(stream))
    return Permissions(
        publish=(f"{API_PREFIX}.>", "shoal.watchctl.>", "shoal.node.*.logs", "shoal.node.*.exec", "shoal.node.*.attach",
                 "shoal.node.*.portforward", "shoal.node.*.stream.>", "shoal.node.*.metrics", "shoal.health.>",
                 "$JS.API.INFO", *follow),
        subscribe=(_inboxes(user, private_inboxes), f"{EVENTS_PREFIX}.>", f"{AUDIT_PREFIX}.>"),
        allow_responses=True,
    )


def admin_permissions() -> Permissions:
    """The admin tool (and operators): everything except writing the datastore behind the API's back and
    speaking for a node (the node-scoped subjects) and reading the API actors' private bucket."""
    return Permissions(publish=(">",), subscribe=(">",),
                       publish_deny=("$KV.shoal.>", "shoal.changes.>", "shoal.node.*.api.>", *SYSTEM_DENY,
                                     *STREAM_MANAGEMENT))


# -- users ------------------------------------------------------------------------------------------
def new_password() -> str:
    return secrets.token_urlsafe(32)


def cluster_users(passwords: Mapping[str, str], nodes: Iterable[str], *, private_inboxes: bool = False) -> list[User]:
    """Every user of a cluster, from ``passwords`` keyed by user name (``api``, ``scheduler``,
    ``controller-manager``, ``cloud-controller-manager``, ``admin``, ``gateway``, ``kubelet-<node>``,
    ``proxy-<node>``; where present ``cli``, the ``shoal`` tool's allow-listed identity, and ``dns-<node>``,
    as ``shoal up`` makes them: ``shoal/up_auth.py``)."""
    users = [User("api", passwords["api"], api_permissions(private_inboxes=private_inboxes))]
    users += [User(actor, passwords[actor], control_plane_permissions(actor, private_inboxes=private_inboxes))
              for actor in CONTROL_PLANE]
    if "admin" in passwords:  # the multi-VM operator; ``shoal up`` has only the narrower ``cli``
        users.append(User("admin", passwords["admin"], admin_permissions()))
    if "cli" in passwords:
        users.append(User("cli", passwords["cli"], cli_permissions("cli", private_inboxes=private_inboxes)))
    if "gateway" in passwords:  # secrets made before the gateway existed have no such user
        users.append(User("gateway", passwords["gateway"], gateway_permissions(private_inboxes=private_inboxes)))
    for node in nodes:
        users.append(User(f"kubelet-{node}", passwords[f"kubelet-{node}"], kubelet_permissions(
            node, private_inboxes=private_inboxes)))
        users.append(User(f"proxy-{node}", passwords[f"proxy-{node}"],
                          proxy_permissions(node, private_inboxes=private_inboxes)))
        if f"dns-{node}" in passwords:  # the cluster DNS server, where it runs (``shoal up``)
            users.append(User(f"dns-{node}", passwords[f"dns-{node}"],
                              reader_permissions("dns", f"dns-{node}", private_inboxes=private_inboxes)))
    return users


def _quote(value: str) -> str:
    return json.dumps(value)  # NATS conf strings accept JSON escaping


def _list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_quote(v) for v in values) + "]"


def render_user(user: User) -> str:
    p = user.permissions
    publish = f"allow: {_list(p.publish)}" + (f", deny: {_list(p.publish_deny)}" if p.publish_deny else "")
    parts = [f"publish: {{{publish}}}", f"subscribe: {{allow: {_list(p.subscribe)}}}"]
    if p.allow_responses:
        parts.append("allow_responses: true")
    return (f"    {{user: {_quote(user.name)}, password: {_quote(user.password)},\n"
            f"     permissions: {{{', '.join(parts)}}}}}")


def render_authorization(users: Sequence[User], *, timeout: float = 2.0) -> str:
    """The ``authorization`` block of a nats-server config (server-wide users, default account)."""
    body = ",\n".join(render_user(u) for u in users)
    return f"authorization {{\n  timeout: {timeout}\n  users = [\n{body}\n  ]\n}}\n"


def env_file(servers: Sequence[str], user: str, password: str, tls_ca: str | None = None) -> str:
    """The ``EnvironmentFile`` lines ``runtime.bus.BusConfig.from_env`` reads."""
    lines = [f"SHOAL_SERVER={','.join(servers)}"] if servers else []
    lines += [f"SHOAL_USER={user}", f"SHOAL_PASSWORD={password}"]
    if tls_ca:
        lines.append(f"SHOAL_TLS_CA={tls_ca}")
    return "\n".join(lines) + "\n"


# -- the secrets directory (CLI) ----------------------------------------------------------------
SECRETS = "secrets.json"
AUTH_CONF = "nats-auth.conf"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


def load_secrets(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / SECRETS).read_text())
    return data


def ensure_node(secrets_: dict[str, Any], node: str) -> None:
    encode_token(node)  # refuses empty or non-Latin-1 names
    if node not in secrets_["nodes"]:
        secrets_["nodes"].append(node)
    for user in (f"kubelet-{node}", f"proxy-{node}"):
        secrets_["passwords"].setdefault(user, new_password())


def new_secrets(nodes: Iterable[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"passwords": {u: new_password() for u in ("api", "admin", "route", "gateway",
                                                                      *CONTROL_PLANE)},
                            "nodes": [], "private_inboxes": True}
    for node in nodes:
        ensure_node(data, node)
    return data


def write_all(directory: Path, data: dict[str, Any], servers: Sequence[str], tls_ca: str | None) -> list[Path]:
    """secrets.json, nats-auth.conf and creds/<user>.env under ``directory``; returns the paths written."""
    _write_private(directory / SECRETS, json.dumps(data, indent=2) + "\n")
    users = cluster_users(data["passwords"], data["nodes"], private_inboxes=bool(data.get("private_inboxes")))
    written = [directory / SECRETS, directory / AUTH_CONF]
    _write_private(directory / AUTH_CONF, render_authorization(users))
    for user in users:
        path = directory / "creds" / f"{user.name}.env"
        _write_private(path, env_file((), user.name, user.password, tls_ca))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.nats_security",
                                     description="Shoal's NATS users: secrets, authorization block, env files")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("init", "add-node", "render", "route-password"):
        p = sub.add_parser(name)
        p.add_argument("--dir", type=Path, default=Path("/etc/shoal"))
        p.add_argument("--tls-ca", default=None, help="CA file path written into the env files as SHOAL_TLS_CA")
        if name == "init":
            p.add_argument("--nodes", default="", help="comma-separated node names to create users for")
            p.add_argument("--force", action="store_true", help="replace existing secrets")
        if name == "add-node":
            p.add_argument("node")
    args = parser.parse_args(argv)
    directory: Path = args.dir
    if args.command == "init":
        existing = (directory / SECRETS).exists() and not args.force
        data = load_secrets(directory) if existing else new_secrets([])
        for node in (n.strip() for n in args.nodes.split(",")):
            if node:
                ensure_node(data, node)
    else:
        data = load_secrets(directory)
        if args.command == "route-password":
            print(data["passwords"]["route"])
            return 0
        if args.command == "add-node":
            ensure_node(data, args.node)
    for path in write_all(directory, data, (), args.tls_ca):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
