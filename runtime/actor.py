"""The actor runtime: connect, run supervised tasks, answer health pings, stop cleanly on signals.

An actor is an object with ``name`` and ``async start(ctx)`` that spawns its tasks on
``ctx.supervisor``; ``run_actor`` owns everything around it. Every actor or agent entry point is
``main(argv)`` built with ``actor_main``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from nats.aio.client import Client
from nats.aio.msg import Msg

from protocol import codec, subjects
from runtime import gc_tuning
from runtime.bus import BusConfig, connect
from runtime.logs import configure_logging, get_logger
from runtime.supervisor import Supervisor


@dataclass
class ActorContext:
    nc: Client
    name: str
    instance: str
    supervisor: Supervisor
    log: Any
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.monotonic)


class Actor(Protocol):
    name: str

    async def start(self, ctx: ActorContext) -> None: ...

    def health(self) -> dict[str, Any]: ...


GC_CLOCK = gc_tuning.GcClock()
"""One per process: collections are process-wide."""


def new_instance_id(name: str) -> str:
    return f"{socket.gethostname().split('.')[0]}-{os.getpid()}-{uuid.uuid4().hex[:6]}".replace(".", "-")


async def run_actor(actor: Actor, bus: BusConfig, *, instance: str | None = None,
                    stop: asyncio.Event | None = None, install_signals: bool = True, manage_gc: bool = False) -> None:
    """Run ``actor`` until SIGTERM/SIGINT (or ``stop`` is set), then shut it down gracefully.

    ``manage_gc``: the process is this actor's own (``actor_main``), so it owns the collector's policy
    (``gc_tuning``); actors run inside another program (tests, embedding) leave the collector alone."""
    instance = instance or new_instance_id(actor.name)
    log = get_logger(actor=actor.name, instance=instance)
    stop = stop or asyncio.Event()
    if install_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    nc = await connect(bus, name=f"{actor.name}/{instance}", log=log, closing=stop.is_set)
    supervisor = Supervisor(log)
    ctx = ActorContext(nc=nc, name=actor.name, instance=instance, supervisor=supervisor, log=log,
                       stopping=stop)
    gc_clock = GC_CLOCK.install()

    async def on_health(msg: Msg) -> None:
        info = {"actor": actor.name, "instance": instance, "pid": os.getpid(), "uptime": time.monotonic() - ctx.started,
                "tasks": supervisor.running(), "gc": gc_clock.stats(), **actor.health()}
        await msg.respond(codec.ok(health=info))

    await nc.subscribe(subjects.health(actor.name), cb=on_health)
    await nc.subscribe(subjects.health(actor.name, instance), cb=on_health)
    log.info("actor starting", servers=list(bus.servers))
    try:
        await actor.start(ctx)
        if manage_gc:
            gc_tuning.freeze_started()
            supervisor.spawn("gc-maintenance", gc_tuning.maintain)
        log.info("actor started")
        await stop.wait()
    finally:
        log.info("actor stopping")
        stop.set()
        await supervisor.close()
        closer = getattr(actor, "close", None)
        if closer is not None:
            await closer()
        try:
            await asyncio.wait_for(nc.drain(), timeout=5)
        except Exception:
            await nc.close()
        log.info("actor stopped")


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default=None, help="NATS URL(s), comma-separated (env SHOAL_SERVER)")
    parser.add_argument("--log-format", default=os.environ.get("SHOAL_LOG_FORMAT", "console"),
                        choices=("console", "json"))
    parser.add_argument("--log-level", default=os.environ.get("SHOAL_LOG_LEVEL", "info"))


def actor_main(description: str, add_arguments: Callable[[argparse.ArgumentParser], None],
               build: Callable[[argparse.Namespace], Actor], argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description)
    common_arguments(parser)
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_format, args.log_level)
    gc_tuning.tune()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    actor = build(args)
    asyncio.run(run_actor(actor, BusConfig.from_env(args.server), manage_gc=True))
    return 0
