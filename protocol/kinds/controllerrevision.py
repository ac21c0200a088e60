"""ControllerRevision (apps/v1): an immutable snapshot of a controller's pod template, numbered.

DaemonSets keep one per template they have rolled out (named ``<daemonset>-<hash>``, labelled with the
``controller-revision-hash``), so their history can be listed; ``data`` never changes, ``revision`` may
only grow (a template rolled out again gets the next number)."""

from __future__ import annotations

from protocol.fielderrors import Errors
from protocol.kinds.strategy import AGE, NAME, NONE, Column, Field, KindInfo, Strategy, num
from protocol.objects import Obj, controller_of

INFO = KindInfo("ControllerRevision", "apps/v1", "controllerrevisions", "controllerrevision")


def _validate(e: Errors, obj: Obj) -> None:
    e.integer(obj, "revision", "revision", 0, required=True)
    e.check(obj.get("data"), "data", dict)


def _validate_update(e: Errors, new: Obj, old: Obj) -> None:
    if new.get("data") != old.get("data"):
        e.add("data", "Invalid value: field is immutable")
    if isinstance(new.get("revision"), int) and isinstance(old.get("revision"), int) and \
            new["revision"] < old["revision"]:
        e.add("revision", "Invalid value: may not decrease")


def _controller(obj: Obj, now: float) -> str:
    owner = controller_of(obj)
    return f"{str(owner.get('kind')).lower()}.apps/{owner.get('name')}" if owner else NONE


STRATEGY = Strategy(
    INFO, description="An immutable snapshot of a controller's pod template, with its revision number.",
    schema=(Field("data", "object", "The snapshot (a DaemonSet's: spec.template)."),
            Field("revision", "integer", "The revision number: higher is newer.", required=True)),
    columns=(NAME, Column("CONTROLLER", _controller, description="The controller it belongs to."),
             Column("REVISION", lambda o, now: num(o, "revision"), type="integer",
                    description="The revision number."), AGE),
    validate=_validate, validate_update=_validate_update,
)
