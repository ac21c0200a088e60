"""Every ``shoal`` command, one module each; ``ALL`` is the table ``main`` builds its parser from.

To add a command, write ``commands/<name>.py`` defining ``COMMAND`` and list it here.
"""

from __future__ import annotations

from shoal.cli.commands import (
    api_info,
    api_resources,
    apply,
    attach,
    auth,
    cordon,
    cp,
    create,
    delete,
    describe,
    drain,
    events,
    exec,
    get,
    keys,
    kubeconfig,
    logs,
    port_forward,
    rollout,
    scale,
    top,
    up,
    version,
    wait,
)
from shoal.cli.registry import Command

ALL: tuple[Command, ...] = (
    get.COMMAND,
    describe.COMMAND,
    apply.COMMAND,
    create.COMMAND,
    delete.COMMAND,
    logs.COMMAND,
    exec.COMMAND,
    attach.COMMAND,
    cp.COMMAND,
    port_forward.COMMAND,
    scale.COMMAND,
    cordon.CORDON,
    cordon.UNCORDON,
    drain.COMMAND,
    top.COMMAND,
    rollout.COMMAND,
    wait.COMMAND,
    events.COMMAND,
    api_info.COMMAND,
    api_resources.COMMAND,
    up.COMMAND,
    kubeconfig.COMMAND,
    keys.COMMAND,
    auth.COMMAND,
    version.COMMAND,
)
