"""The connection a command works through: the NATS URL, the default namespace, a lazily made ApiClient.

Commands that never talk to the cluster (``up``) never connect. A failed connection becomes a
``CliError`` that says how to start a cluster or point the tool at one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client

from protocol.kinds import KindInfo
from protocol.objects import Obj, meta
from runtime.bus import BusConfig, connect
from runtime.client import ApiClient
from runtime.context import ContextError, bus_config
from shoal.cli.errors import CliError, UsageError

DEFAULT_NAMESPACE = "default"


CONNECT_TIMEOUT = 3.0


class _ConnectErrors:
    """Stands in for the logger ``runtime.bus.connect`` reports connection errors to."""

    def __init__(self, servers: int) -> None:
        self.servers = servers
        self.count = 0
        self.reason: str | None = None
        self.all_failed = asyncio.Event()

    def warning(self, message: str, **fields: Any) -> None:
        if message != "nats error":
            return
        error = str(fields.get("error", ""))
        if "Authorization Violation" in error or "authorization violation" in error.lower():
            self.reason = AUTH_REFUSED
        elif "refused" in error or "Connect call failed" in error:
            self.reason = "connection refused"
        elif "Timeout" in error:
            self.reason = f"no answer within {CONNECT_TIMEOUT:g}s"
        else:
            self.reason = error
        self.count += 1
        if self.count >= self.servers:
            self.all_failed.set()

    def info(self, message: str, **fields: Any) -> None:
        pass


AUTH_REFUSED = "authentication refused"


def cannot_reach(servers: str, reason: str | None = None) -> CliError:
    if reason == AUTH_REFUSED:
        return CliError(f"the cluster at {servers} refused the credentials (or none were found): a `shoal up` "
                        "cluster's are in <state-dir>/context.json, found by itself for the default state directory; "
                        "otherwise set SHOAL_CONTEXT=<state-dir>/context.json (or SHOAL_STATE_DIR)")
    why = f" ({reason})" if reason else ""
    return CliError(f"cannot reach the cluster at {servers}{why}: is it running? start one with `shoal up` "
                    "or set --server/SHOAL_SERVER")


def impersonation(user: str | None, groups: list[str]) -> dict[str, Any] | None:
    """``--as``/``--as-group`` as the API's ``as``: the user's groups, ``system:authenticated``, and for a
    ServiceAccount user ``system:serviceaccounts`` and ``system:serviceaccounts:<ns>`` (as the gateway's)."""
    if not user:
        return None
    implied: list[str] = []
    parts = user.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        implied = ["system:serviceaccounts", f"system:serviceaccounts:{parts[2]}"]
    all_groups = [*implied, *groups]
    if user != "system:anonymous" and "system:authenticated" not in all_groups:
        all_groups.append("system:authenticated")
    return {"user": user, "groups": all_groups}


@dataclass
class Session:
    bus: BusConfig
    namespace: str = DEFAULT_NAMESPACE
    namespace_given: bool = False
    """Whether -n was on the command line (apply refuses objects of another namespace then)."""
    timeout: float = 10.0
    context_error: str | None = None
    """Why the context file (``runtime.context``) cannot be used, said when a command connects."""
    impersonate: dict[str, Any] | None = None
    """``--as``/``--as-group``: the ``as`` every API request carries (RBAC for that user), else None."""
    _nc: Client | None = field(default=None, init=False)
    _client: ApiClient | None = field(default=None, init=False)
    _warned: set[str] = field(default_factory=set, init=False)

    @classmethod
    def create(cls, server: str | None, namespace: str | None, *, timeout: float = 10.0,
               as_user: str | None = None, as_groups: list[str] | None = None) -> Session:
        default_ns = os.environ.get("SHOAL_NAMESPACE") or DEFAULT_NAMESPACE
        error = None
        try:
            bus = bus_config(server)
        except ContextError as exc:  # told when the command connects (``shoal up`` never does)
            bus, error = BusConfig.from_env(server), str(exc)
        if as_groups and not as_user:
            raise UsageError("--as-group needs --as (the user to act as)")
        impersonate = impersonation(as_user, as_groups or [])
        return cls(bus, namespace or default_ns, namespace_given=bool(namespace), timeout=timeout,
                   context_error=error, impersonate=impersonate)

    @property
    def server(self) -> str:
        return ",".join(self.bus.servers)

    def namespace_for(self, info: KindInfo, obj: Obj) -> str | None:
        """The namespace an object from a file goes to (set on it): its own, else -n, else the default."""
        m = meta(obj)
        if not info.namespaced:
            m.pop("namespace", None)
            return None
        given = m.get("namespace")
        if given and self.namespace_given and given != self.namespace:
            raise CliError(f"the namespace of the object ({given}) does not match the namespace given with "
                           f"-n ({self.namespace}): pass -n {given}, or leave -n out")
        namespace = str(given or self.namespace)
        m["namespace"] = namespace
        return namespace

    def warn(self, text: str) -> None:
        """Print a warning of the API as kubectl does (``Warning: …`` on stderr), each text once."""
        if text not in self._warned:
            self._warned.add(text)
            print(f"Warning: {text}", file=sys.stderr, flush=True)

    async def client(self) -> ApiClient:
        if self._client is None:
            self._nc = await self._connect()
            who = self.impersonate
            self._client = ApiClient(self._nc, timeout=self.timeout, on_warning=self.warn,
                                     impersonate=(lambda: who) if who is not None else None)
        return self._client

    async def trusted_client(self) -> ApiClient:
        """A client that never impersonates (access reviews are asked as the trusted caller)."""
        client = await self.client()
        return ApiClient(client.nc, timeout=self.timeout, on_warning=self.warn)

    async def _connect(self) -> Client:
        """Connect once, failing fast: nats.py with reconnects off still cycles through the servers forever
        (``max_reconnect_attempts=0`` is not "none"), so the first error of every server ends the attempt."""
        if self.context_error:
            raise CliError(self.context_error)
        errors = _ConnectErrors(len(self.bus.servers))
        attempt = asyncio.ensure_future(connect(self.bus, name="shoal-cli", log=errors, reconnect=False,
                                                connect_timeout=CONNECT_TIMEOUT))
        failed = asyncio.ensure_future(errors.all_failed.wait())
        try:
            done, _ = await asyncio.wait({attempt, failed}, timeout=CONNECT_TIMEOUT + 2,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            failed.cancel()
        if attempt in done and attempt.exception() is None:
            return attempt.result()
        attempt.cancel()
        with contextlib.suppress(BaseException):
            await attempt
        reason = errors.reason or ("no answer" if not done else None)
        raise cannot_reach(self.server, reason)

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await self._nc.close()
        self._nc, self._client = None, None
