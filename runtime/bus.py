"""Connecting to NATS: servers, credentials and reconnect policy, the same for every process.

Options come from arguments or the environment: ``SHOAL_SERVER`` (comma-separated URLs),
``SHOAL_CREDS`` (a .creds file), ``SHOAL_USER``/``SHOAL_PASSWORD``, ``SHOAL_TOKEN``, ``SHOAL_TLS_CA``.
The ``shoal`` tool falls back on a context file when none is set (``runtime.context``).
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client

from protocol.keys import encode_token


def _not_the_tls_eof_notice(record: logging.LogRecord) -> bool:
    # asyncio's notice for nats-py's TLS upgrade of a plain transport at every connection close: noise
    return not str(record.msg).startswith("returning true from eof_received()")


logging.getLogger("asyncio").addFilter(_not_the_tls_eof_notice)

DEFAULT_SERVER = "nats://127.0.0.1:4222"


@dataclass(frozen=True)
class BusConfig:
    servers: tuple[str, ...] = (DEFAULT_SERVER,)
    creds: str | None = None
    user: str | None = None
    password: str | None = None
    token: str | None = None
    tls_ca: str | None = None

    @classmethod
    def from_env(cls, server: str | None = None) -> BusConfig:
        raw = server or os.environ.get("SHOAL_SERVER") or DEFAULT_SERVER
        return cls(
            servers=tuple(s.strip() for s in raw.split(",") if s.strip()),
            creds=os.environ.get("SHOAL_CREDS") or None,
            user=os.environ.get("SHOAL_USER") or None,
            password=os.environ.get("SHOAL_PASSWORD") or None,
            token=os.environ.get("SHOAL_TOKEN") or None,
            tls_ca=os.environ.get("SHOAL_TLS_CA") or None,
        )


async def connect(config: BusConfig, *, name: str, log: Any = None, reconnect: bool = True,
                  connect_timeout: float = 2.0, closing: Callable[[], bool] = lambda: False) -> Client:
    """Connect; with ``reconnect`` the client retries forever, riding out server restarts and failover."""

    async def on_error(exc: Exception) -> None:
        if log is not None:
            log.warning("nats error", error=repr(exc))

    async def on_disconnect() -> None:
        if log is not None and not closing():
            log.warning("nats disconnected")

    async def on_reconnect() -> None:
        if log is not None:
            log.info("nats reconnected")

    options: dict[str, Any] = {
        "servers": list(config.servers), "name": name, "connect_timeout": connect_timeout,
        # nats-py reads max_reconnect_attempts=0 as "no limit": one attempt per server when not reconnecting
        "allow_reconnect": reconnect, "max_reconnect_attempts": -1 if reconnect else 1,
        # a server cut off the network is noticed within ~6 s (see tests/multivm): ping every 3 s, 2 misses
        "reconnect_time_wait": 0.5, "ping_interval": 3, "max_outstanding_pings": 2,
        "error_cb": on_error, "disconnected_cb": on_disconnect, "reconnected_cb": on_reconnect,
        "pending_size": 64 * 1024 * 1024,
    }
    if config.creds:
        options["user_credentials"] = config.creds
    if config.user:
        options["user"], options["password"] = config.user, config.password or ""
    prefix = os.environ.get("SHOAL_INBOX_PREFIX") or (f"_INBOX.{encode_token(config.user)}" if config.user else "")
    if prefix:
        options["inbox_prefix"] = prefix  # private inboxes: a user may subscribe only its own
    if config.token:
        options["token"] = config.token
    if config.tls_ca:
        options["tls"] = ssl.create_default_context(cafile=config.tls_ca)
    return await nats.connect(**options)
