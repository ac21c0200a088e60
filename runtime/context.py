"""Where a client finds a cluster and its credentials without flags: the context file, as kubeconfig.

``shoal up`` writes ``<state>/context.json`` (0600): the NATS URL(s) of the cluster, the ``cli`` identity's
user and password, and the CA of its TLS (when it listens beyond loopback)::

    {"server": "nats://127.0.0.1:4222", "user": "cli", "password": "...", "tls_ca": null, "cluster": "shoal"}

``bus_config`` resolves a client's connection, first match wins:

1. credentials in the environment (``SHOAL_USER``/``SHOAL_PASSWORD``, ``SHOAL_CREDS``, ``SHOAL_TOKEN``):
   as given, no context is read;
2. ``SHOAL_CONTEXT``: that file (it must exist);
3. ``<state>/context.json`` of ``$SHOAL_STATE_DIR`` or the default state directory
   (``$XDG_DATA_HOME/shoal``, ``~/.local/share/shoal``), then ``$XDG_CONFIG_HOME/shoal/context.json``
   (``~/.config/shoal/context.json``, a file you place for a cluster elsewhere).

A context is used when no server is given (``--server``/``SHOAL_SERVER``), then its server is the one; or
when the server given is the context's. Its credentials never go to another server: with a server of no
context, the client connects with none (and an authenticating server refuses it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runtime.bus import BusConfig

CONTEXT_FILE = "context.json"


class ContextError(ValueError):
    """A context file that cannot be used: the message names the file and what is wrong."""


@dataclass(frozen=True)
class Context:
    servers: tuple[str, ...]
    user: str
    password: str
    tls_ca: str | None = None
    cluster: str | None = None
    path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {"server": ",".join(self.servers), "user": self.user, "password": self.password,
                "tls_ca": self.tls_ca, "cluster": self.cluster}

    def bus(self, servers: tuple[str, ...] | None = None) -> BusConfig:
        return BusConfig(servers=servers or self.servers, user=self.user, password=self.password, tls_ca=self.tls_ca)


def default_state_dir() -> Path:
    """``$SHOAL_STATE_DIR``, else ``$XDG_DATA_HOME/shoal`` (``~/.local/share/shoal``): ``shoal up``'s home."""
    env = os.environ.get("SHOAL_STATE_DIR")
    if env:
        return Path(env).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "shoal"


def user_context_path() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "shoal" / CONTEXT_FILE


def write_context(path: Path, context: Context) -> None:
    """Write ``path`` 0600 (it holds a password), replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(context.to_json(), indent=2) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_context(path: Path) -> Context:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ContextError(f"cannot read the context file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ContextError(f"the context file {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ContextError(f"the context file {path} is not a JSON object")
    server, user, password = data.get("server"), data.get("user"), data.get("password")
    tls_ca, cluster = data.get("tls_ca"), data.get("cluster")
    for name, value in (("server", server), ("user", user), ("password", password)):
        if not isinstance(value, str) or not value:
            raise ContextError(f"the context file {path} has no {name!r} string")
    for name, value in (("tls_ca", tls_ca), ("cluster", cluster)):
        if value is not None and not isinstance(value, str):
            raise ContextError(f"the context file {path}: {name!r} must be a string or null")
    assert isinstance(server, str) and isinstance(user, str) and isinstance(password, str)
    servers = tuple(s.strip() for s in server.split(",") if s.strip())
    return Context(servers, user, password, tls_ca, cluster, path)


def _endpoint(url: str) -> str:
    """``nats://localhost:4222`` and ``127.0.0.1:4222`` are one endpoint; ``nats``/``tls`` schemes alike."""
    rest = url.split("://", 1)[-1].rsplit("@", 1)[-1].rstrip("/").lower()
    host, _, port = rest.rpartition(":")
    if not host:
        host, port = rest, "4222"
    if host in ("localhost", "[::1]", "::1"):
        host = "127.0.0.1"
    return f"{host}:{port}"


def same_servers(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return {_endpoint(u) for u in a} == {_endpoint(u) for u in b}


def candidate_paths() -> list[Path]:
    explicit = os.environ.get("SHOAL_CONTEXT")
    if explicit:
        return [Path(explicit).expanduser()]
    return [default_state_dir() / CONTEXT_FILE, user_context_path()]


def find_context(servers: tuple[str, ...] | None) -> Context | None:
    """The context for ``servers`` (None: no server given, the first context found); a ``SHOAL_CONTEXT``
    that is missing or broken is an error, a broken one found by search is too (never silently skipped)."""
    explicit = bool(os.environ.get("SHOAL_CONTEXT"))
    for path in candidate_paths():
        if not explicit and not path.exists():
            continue
        context = load_context(path)
        if servers is None or same_servers(servers, context.servers):
            return context
    return None


def bus_config(server: str | None = None) -> BusConfig:
    """How a client (the ``shoal`` tool) connects: see the module docstring for the order."""
    base = BusConfig.from_env(server)
    if base.user or base.creds or base.token:
        return base
    given = server or os.environ.get("SHOAL_SERVER")
    context = find_context(base.servers if given else None)
    if context is None:
        return base
    return replace(context.bus(), servers=base.servers if given else context.servers,
                   tls_ca=base.tls_ca or context.tls_ca)
