"""Server-side apply (``PATCH`` with ``application/apply-patch+yaml``, ``kubectl apply --server-side``), pure.

What a field manager applied is remembered in ``metadata.managedFields`` (operation ``Apply``, the fields as
Kubernetes' ``FieldsV1``: ``{"f:spec": {"f:replicas": {}, "f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {},
"f:image": {}}}}}``). Applying a configuration:

1. the fields the manager applied last time and no longer applies are removed from the object (a dropped
   label, env var or container goes), the others the object has are kept (defaults, other writers' fields);
2. the configuration is merged in: maps field by field, lists of named things (``patch.MERGE_KEYS``) item by
   item on their key, other lists as a whole;
3. the manager's entry is replaced by what it applies now.

Applying the same configuration twice changes nothing (no write). Two appliers may own a field together
while they apply the same value; applying a different value to a field another applier owns is a
``Conflict`` (409, one cause per field, as ``kubectl apply --server-side`` prints them) unless ``force``
(``--force-conflicts``), which takes the field from the other.

Writers that do not apply are managers too, as in Kubernetes (operation ``Update``): a create, update or
patch through the gateway (``record_update``) gives its manager (``fieldManager``, else the User-Agent's
product, e.g. ``kubectl``) the fields it set or changed and takes them from every other manager, appliers
included; a field it removed leaves every manager. Applying another value to a field an updater owns is a
conflict like any other (``kubectl scale`` then ``apply --server-side`` of other replicas). Writes made over
NATS (``shoal``, the controllers) are not tracked: they never conflict.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from actors.gateway.patch import _merge_key
from protocol.errors import BadRequest, Conflict
from protocol.objects import Obj, meta

Path = tuple[str, ...]
IDENTITY = ("apiVersion", "kind")
KUBECTL = "kubectl"  # the manager of `kubectl apply --server-side`
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
META_IDENTITY = ("name", "namespace", "resourceVersion", "uid", "managedFields", "creationTimestamp", "generation")


def _item_key(field: str, item: dict[str, Any], names: tuple[str, ...]) -> str | None:
    key = _merge_key(field, [item], names)
    if key is None or key not in item:
        return None
    return "k:" + json.dumps({key: item[key]}, separators=(",", ":"), sort_keys=True)


def owned_paths(applied: Obj) -> set[Path]:
    """The fields a configuration sets, as FieldsV1 paths (``("f:spec", "f:replicas")``)."""
    out: set[Path] = set()

    def walk(value: Any, path: Path, names: tuple[str, ...]) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                if not path and key in IDENTITY:
                    continue
                if path == ("f:metadata",) and key in META_IDENTITY:
                    continue
                walk_field(key, item, (*path, f"f:{key}"), names)
        else:
            out.add(path)

    def walk_field(name: str, value: Any, path: Path, names: tuple[str, ...]) -> None:
        if isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
            keys = [_item_key(name, i, (*names, name)) for i in value]
            if all(keys):
                for key, item in zip(keys, value, strict=True):
                    assert key is not None
                    out.add((*path, key))
                    walk(item, (*path, key), (*names, name))
                return
        walk(value, path, (*names, name))

    walk(applied, (), ())
    out.discard(("f:metadata",))
    return {p for p in out if p}


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(part, {})
        if path[-1].startswith("k:"):
            node.setdefault(".", {})
    return root


def from_fields_v1(fields: Any, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    if not isinstance(fields, dict):
        return out
    for key, child in fields.items():
        if key == ".":
            out.add(prefix)
        elif isinstance(child, dict) and child:
            out |= from_fields_v1(child, (*prefix, key))
        else:
            out.add((*prefix, key))
    return out


def _remove(obj: Any, path: Path) -> None:
    """Remove the field or list item at ``path``; a list left empty by it goes too."""
    node, parent, name = obj, None, ""
    for n, part in enumerate(path):
        last = n == len(path) - 1
        if part.startswith("f:") and isinstance(node, dict):
            if last:
                node.pop(part[2:], None)
                return
            parent, name, node = node, part[2:], node.get(part[2:])
        elif part.startswith("k:") and isinstance(node, list):
            wanted = json.loads(part[2:])
            index = next((i for i, item in enumerate(node)
                          if isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items())), None)
            if index is None:
                return
            if last:
                del node[index]
                if not node and isinstance(parent, dict):
                    parent.pop(name, None)
                return
            parent, node = None, node[index]
        else:
            return


def _merge(target: Any, applied: Any, names: tuple[str, ...]) -> Any:
    if not isinstance(applied, dict) or not isinstance(target, dict):
        return copy.deepcopy(applied)
    for key, value in applied.items():
        current = target.get(key)
        if isinstance(value, list) and isinstance(current, list) and value and all(isinstance(i, dict) for i in value):
            merged = list(current)
            keyed = True
            for item in value:
                key_text = _item_key(key, item, (*names, key))
                if key_text is None:
                    keyed = False
                    break
                wanted = json.loads(key_text[2:])
                index = next((i for i, c in enumerate(merged)
                              if isinstance(c, dict) and all(c.get(k) == v for k, v in wanted.items())), None)
                if index is None:
                    merged.append(copy.deepcopy(item))
                else:
                    merged[index] = _merge(copy.deepcopy(merged[index]), item, (*names, key))
            target[key] = merged if keyed else copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(current, dict):
            target[key] = _merge(current, value, (*names, key))
        else:
            target[key] = copy.deepcopy(value)
    return target


def entry(manager: str, api_version: str, paths: set[Path], now: str) -> Obj:
    return {"manager": manager, "operation": "Apply", "apiVersion": api_version, "time": now,
            "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)}


def _value(obj: Any, path: Path) -> Any:
    node = obj
    for part in path:
        if part.startswith("f:") and isinstance(node, dict):
            node = node.get(part[2:])
        elif part.startswith("k:") and isinstance(node, list):
            wanted = json.loads(part[2:])
            node = next((i for i in node if isinstance(i, dict) and all(i.get(k) == v for k, v in wanted.items())),
                        None)
        else:
            return None
    return node


def _display(path: Path) -> str:
    return "".join(f".{p[2:]}" if p.startswith("f:") else f"[{p[2:]}]" for p in path)


def apply(current: Obj | None, applied: Any, manager: str, now: str, *, force: bool = False) -> Obj:
    """The object after ``manager`` applies ``applied`` to ``current`` (None: it does not exist yet)."""
    if not isinstance(applied, dict):
        raise BadRequest("an apply configuration is a YAML or JSON object")
    if not manager:
        raise BadRequest("server-side apply needs a fieldManager")
    paths = owned_paths(applied)
    api_version = str(applied.get("apiVersion", ""))
    if current is None:
        result = copy.deepcopy(applied)
        meta(result)["managedFields"] = [entry(manager, api_version, paths, now)]
        return result
    result = copy.deepcopy(current)
    managed = [m for m in meta(result).get("managedFields") or [] if isinstance(m, dict)]
    mine = next((m for m in managed if m.get("manager") == manager and m.get("operation") == "Apply"), None)
    previous = from_fields_v1(mine.get("fieldsV1")) if mine else set()
    owners = [m for m in managed if m is not mine and m.get("manager") != manager]
    conflicts: list[tuple[str, Path]] = []
    for other in owners:
        theirs = from_fields_v1(other.get("fieldsV1"))
        contested = {p for p in paths & theirs if not p[-1].startswith("k:")
                     and _value(current, p) != _value(applied, p)}
        if contested and force:
            other["fieldsV1"] = to_fields_v1(theirs - contested)
        conflicts += [(str(other.get("manager")), p) for p in sorted(contested)]
    if conflicts and not force and manager == KUBECTL and {p for _, p in conflicts} <= _last_applied_fields(current):
        return apply(current, applied, manager, now, force=True)  # kubectl taking over from client-side apply
    if conflicts and not force:
        raise Conflict(f"Apply failed with {len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''}: "
                       + "; ".join(f'conflict with "{m}": {_display(p)}' for m, p in conflicts),
                       {"causes": [{"field": _display(p), "message": f'conflict with "{m}"',
                                    "reason": "FieldManagerConflict"}
                                   for m, p in conflicts]})
    for path in sorted(previous - paths, key=len):  # a whole item before its fields (they go with it)
        _remove(result, path)
    body = {k: v for k, v in applied.items() if k != "metadata"}
    applied_meta = {k: v for k, v in (applied.get("metadata") or {}).items() if k not in META_IDENTITY}
    _merge(result, body, ())
    _merge(meta(result), applied_meta, ("metadata",))
    unchanged = result == current and not conflicts
    if mine is not None and from_fields_v1(mine.get("fieldsV1")) == paths and unchanged:
        return current  # nothing changed: keep the entry's time, so the object is not written
    others = [m for m in managed if m is not mine and m.get("fieldsV1") != {}]  # a manager left with nothing goes
    meta(result)["managedFields"] = [*others, entry(manager, api_version, paths, now)]
    return result


def _last_applied_fields(live: Obj) -> set[Path]:
    """The fields of the live object's ``last-applied-configuration`` (client-side apply's record) that
    still hold the value it applied. Kubernetes lets ``kubectl apply --server-side`` take exactly these
    from other managers without a conflict (its lastAppliedManager): what client-side apply set and
    nobody changed since is the user's own configuration moving to server-side apply."""
    text = (meta(live).get("annotations") or {}).get(LAST_APPLIED)
    try:
        last = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return set()
    if not isinstance(last, dict):
        return set()
    return {p for p in owned_paths(last) if p[-1].startswith("k:") or _value(last, p) == _value(live, p)}


def _tracked(obj: Obj | None) -> Obj:
    """The part of an object whose fields have managers: no status, no identity."""
    return {k: v for k, v in (obj or {}).items() if k != "status"}


def record_update(before: Obj | None, after: Obj, manager: str, now: str) -> Obj:
    """``after`` with ``metadata.managedFields`` as Kubernetes keeps them for a non-apply write by
    ``manager`` of ``before`` (None: a create): the fields ``after`` adds or changes become the manager's
    (operation ``Update``) and leave every other manager; removed fields leave every manager. The
    managers are taken from ``before`` (a client cannot rewrite them by sending its own)."""
    old = _tracked(before)
    new = _tracked(after)
    was, now_paths = owned_paths(old), owned_paths(new)
    changed = {p for p in now_paths
               if p not in was or (not p[-1].startswith("k:") and _value(old, p) != _value(new, p))}
    removed = was - now_paths
    managed = copy.deepcopy([m for m in meta(before or {}).get("managedFields") or [] if isinstance(m, dict)])
    if not changed and not removed:
        if managed:
            meta(after)["managedFields"] = managed
        else:
            meta(after).pop("managedFields", None)
        return after
    gone = changed | removed

    def kept(paths: set[Path]) -> set[Path]:
        return {p for p in paths if not any(p[:len(g)] == g for g in gone if len(g) <= len(p))}

    out: list[Obj] = []
    mine: Obj | None = None
    for m in managed:
        if m.get("manager") == manager and m.get("operation") == "Update":
            mine = m
            continue
        paths = kept(from_fields_v1(m.get("fieldsV1")))
        if paths:
            m["fieldsV1"] = to_fields_v1(paths)
            out.append(m)
    previous = kept(from_fields_v1(mine.get("fieldsV1"))) if mine is not None else set()
    ours = (previous | changed) & now_paths
    if ours:
        out.append({"manager": manager, "operation": "Update", "apiVersion": str(after.get("apiVersion", "")),
                    "time": now, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(ours)})
    if out:
        meta(after)["managedFields"] = out
    else:
        meta(after).pop("managedFields", None)
    return after


def manager_of(field_manager: str | None, user_agent: str | None) -> str:
    """The manager of a write: ``fieldManager`` if given, else the User-Agent's product as Kubernetes
    derives it (``kubectl/v1.32.0 (linux/amd64) …`` → ``kubectl``), else ``unknown``."""
    if field_manager:
        return field_manager[:128]
    product = (user_agent or "").split("/", 1)[0].strip()
    return product[:128] or "unknown"
