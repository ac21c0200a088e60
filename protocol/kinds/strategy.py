"""What a kind is and how the API treats it: ``KindInfo`` (identity), ``Strategy`` (behaviour), ``Column``
(a printed column) and ``Field`` (a schema node). Pure data and pure functions; see the package docstring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from protocol.fielderrors import Errors
from protocol.humanize import age
from protocol.objects import Obj, meta, name_of
from protocol.selectors import Selector

Scope = Literal["Namespaced", "Cluster"]


@dataclass(frozen=True, slots=True)
class KindInfo:
    """A kind's identity: its group/version, the plural (key and subject token), names a user may type,
    its scope, its subresources (``status``, ``scale``, ``binding``, ``log``) and the categories it belongs
    to (``all``: what ``get all`` shows, as Kubernetes' ``CategoriesProvider``)."""

    kind: str
    api_version: str
    plural: str
    singular: str
    short_names: tuple[str, ...] = ()
    namespaced: bool = True
    subresources: frozenset[str] = frozenset()
    categories: tuple[str, ...] = ()

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def scope(self) -> Scope:
        return "Namespaced" if self.namespaced else "Cluster"

    @property
    def has_status(self) -> bool:
        """Status is written only through update-status; update and patch keep the stored status."""
        return "status" in self.subresources


@dataclass(frozen=True, slots=True)
class Column:
    """A printed column, as Kubernetes' ``TableColumnDefinition``: priority 0 always shows, priority 1 only
    with ``-o wide``. ``value(obj, now)`` renders the cell (``now`` in epoch seconds, for ages); ``type``
    is an OpenAPI type (``string``, ``integer``, ``number``, ``boolean``), ``format`` a hint such as
    ``name`` or ``date``."""

    name: str
    value: Callable[[Obj, float], str]
    priority: int = 0
    type: str = "string"
    description: str = ""
    format: str = ""

    @property
    def wide(self) -> bool:
        return self.priority > 0


@dataclass(frozen=True, slots=True)
class Field:
    """One node of a kind's schema: a name, a JSON type (``string``, ``integer``, ``boolean``, ``number``,
    ``object``, ``array``), a description; ``fields`` for an object's known fields, ``items`` for an array's
    element, ``values`` for a map's values, ``enum`` for the allowed strings. Enough to emit OpenAPI later."""

    name: str
    type: str
    description: str = ""
    required: bool = False
    fields: tuple[Field, ...] = ()
    items: Field | None = None
    values: Field | None = None
    enum: tuple[str, ...] = ()


Hook = Callable[[Obj], None]
NameRule = Literal["label", "subdomain", "path"]
"""``path``: any path segment (no ``/`` or ``%``, not ``.`` or ``..``), as RBAC names (``system:kube-scheduler``)."""


def _nothing(obj: Obj) -> None:
    return None


def _no_update_checks(e: Errors, new: Obj, old: Obj) -> None:
    return None


def _no_merge(current: Obj, merged: Obj) -> None:
    return None


def _no_warnings(obj: Obj) -> list[str]:
    return []


def no_update_warnings(new: Obj, old: Obj) -> list[str]:
    return []


def _no_spec_finalizers(obj: Obj) -> list[str]:
    return []


def _never(obj: Obj) -> bool:
    return False


def spec_part(obj: Obj) -> Obj:
    """Everything but metadata and status: what, when changed, bumps metadata.generation."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def by_namespace_and_name(obj: Obj) -> Any:
    return (meta(obj).get("namespace") or "", name_of(obj))


NAME = Column("NAME", lambda o, now: name_of(o), description="Name must be unique within a namespace.",
              format="name")
AGE = Column("AGE", lambda o, now: age(o, now), format="date",
             description="How long ago the object was created (metadata.creationTimestamp).")


@dataclass(frozen=True)
class Strategy:
    """How the API serves one kind, as Kubernetes' ``pkg/registry/<group>/<resource>/strategy.go``.

    Every hook is pure. Hooks that need the datastore or a key (Service addresses, token Secrets) live
    API-side in ``actors/api/kindhooks.py``."""

    info: KindInfo
    description: str = ""
    schema: tuple[Field, ...] = ()
    """The kind's top-level fields besides apiVersion, kind and metadata."""
    columns: tuple[Column, ...] = (NAME, AGE)
    sort_key: Callable[[Obj], Any] = by_namespace_and_name
    """How ``get`` orders a listing (by namespace and name; Events by when they last happened)."""
    name_rule: NameRule = "subdomain"
    """metadata.name must be a DNS label (63) or a DNS subdomain (253)."""
    default: Hook = _nothing
    """Fill absent fields in place (on create and on every update, so an omitted default stays)."""
    admit_new: Hook = _nothing
    """Create-time admission defaults, not re-applied on update (pods' default tolerations)."""
    create_status: Hook | None = None
    """Set the status a new object starts with; None: ``{}`` for kinds with a status subresource."""
    validate: Callable[[Errors, Obj], None] | None = None
    """Check the kind's own fields (spec, data...), on create and update; None: ``spec``, if any, is a map."""
    validate_update: Callable[[Errors, Obj, Obj], None] = _no_update_checks
    """Extra checks of ``(new, old)`` on update (immutable fields)."""
    prepare_update: Callable[[Obj, Obj], None] = _no_merge
    """``(current, merged)``: carry over what an update may not change or may omit (a bound pod's
    nodeName, a Service's allocated addresses); may raise Invalid."""
    generation_part: Callable[[Obj], Obj] = spec_part
    """The part of the object whose change bumps metadata.generation."""
    warnings: Callable[[Obj], list[str]] = _no_warnings
    """Warnings for a created object (deprecated or ignored fields): shown to the user, never refused."""
    warnings_on_update: Callable[[Obj, Obj], list[str]] | None = None
    """Warnings for ``(new, old)`` on update; None: the create warnings when the update changes the
    generation part (what the object asks for), none when it changes only metadata."""
    spec_finalizers: Callable[[Obj], list[str]] = _no_spec_finalizers
    """Finalizers kept outside metadata (a Namespace's spec.finalizers) that also hold its deletion."""
    protected_names: frozenset[str] = frozenset()
    """Objects that cannot be deleted (system namespaces)."""
    mark_deleting: Hook = _nothing
    """Applied once when a deletion starts (a Namespace turns Terminating)."""
    grace_period: Callable[[Obj], int] | None = None
    """Graceful deletion: the default grace period of an object; None: deletion is not graceful."""
    awaits_confirmation: Callable[[Obj], bool] = _never
    """A deleted object stays until its agent confirms (a bound, running pod waits for its kubelet)."""
    pod_selector: Callable[[Obj], Selector] | None = None
    """For kinds that select pods (``shoal logs deploy/x``): the selector of an object."""

    @property
    def kind(self) -> str:
        return self.info.kind

    def columns_for(self, *, wide: bool = False) -> list[Column]:
        return [c for c in self.columns if wide or c.priority == 0]

    def row(self, obj: Obj, now: float, *, wide: bool = False) -> list[str]:
        return [c.value(obj, now) for c in self.columns_for(wide=wide)]

    def initial_status(self, obj: Obj) -> None:
        if self.create_status is not None:
            self.create_status(obj)
        elif self.info.has_status:
            obj["status"] = {}

    def validate_fields(self, e: Errors, obj: Obj) -> None:
        if self.validate is not None:
            self.validate(e, obj)
        elif obj.get("spec") is not None:
            e.check(obj.get("spec"), "spec", dict)

    def update_warnings(self, new: Obj, old: Obj) -> list[str]:
        if self.warnings_on_update is not None:
            return self.warnings_on_update(new, old)
        return self.warnings(new) if self.generation_part(new) != self.generation_part(old) else []

    def finalizers(self, obj: Obj) -> list[str]:
        """Every finalizer that holds the deletion of ``obj``."""
        return list(meta(obj).get("finalizers") or []) + self.spec_finalizers(obj)


# -- small pure helpers the kind modules share ----------------------------------------------------
NONE = "<none>"


def get_path(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def num(obj: Obj, *path: str) -> str:
    return str(get_path(obj, *path) or 0)


STRING_MAP = Field("", "string")


def string_map(name: str, description: str) -> Field:
    return Field(name, "object", description, values=STRING_MAP)


def undescribed(*fields: str) -> tuple[Field, ...]:
    """Kubernetes fields Shoal accepts and keeps but does not describe further (``name:type``): an object
    Field that lists its fields lists all of them (unknown-field detection relies on it), and subtrees it
    does not describe are not checked."""
    out = []
    for spec in fields:
        name, _, kind = spec.partition(":")
        out.append(Field(name, kind or "object"))
    return tuple(out)


OBJECT_META_FIELDS = (
    "name:string", "generateName:string", "namespace:string", "uid:string", "resourceVersion:string",
    "generation:integer", "creationTimestamp:string", "deletionTimestamp:string",
    "deletionGracePeriodSeconds:integer", "labels", "annotations", "ownerReferences:array", "finalizers:array",
    "managedFields:array", "selfLink:string")
"""ObjectMeta's fields: metadata is checked against them."""
