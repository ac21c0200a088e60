"""What a controller is: it registers its informers and handlers, then reconciles keys.

Controllers follow the same shape: watch handlers only enqueue keys; ``reconcile(key)`` reads desired
and actual state from the informers' caches, calls a pure planning function, and executes the actions
through the API. Expectations (``expectations.Expectations``) stop a controller from acting twice on a
cache that has not yet seen its own writes; ``controllerref`` claims the objects an owner controls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.client import ApiClient
from runtime.events import EventRecorder
from runtime.informers import InformerFactory
from runtime.supervisor import Supervisor


@dataclass
class ControllerContext:
    client: ApiClient
    informers: InformerFactory
    recorder: EventRecorder
    supervisor: Supervisor
    log: Any
    options: dict[str, Any] = field(default_factory=dict)
    """Per-controller settings from the command line (grace periods, eviction rate, ...)."""


class Controller(Protocol):
    name: str

    def setup(self, ctx: ControllerContext) -> None:
        """Create informers (through ``ctx.informers``) and register handlers. No I/O."""

    async def run(self) -> None:
        """Run the reconcile workers forever (started after every informer has synced)."""
