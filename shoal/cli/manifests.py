"""Loading objects from files for ``apply``, ``create -f`` and ``delete -f``.

A source is a file (multi-document YAML, or JSON), a directory (its ``*.yaml``, ``*.yml`` and ``*.json``
files, recursively, in name order) or ``-`` for stdin. ``kind: List`` documents are flattened. Every
source is read and checked before anything is sent, so a typo never leaves a half-applied set; errors
name the file, the document and the line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from protocol.objects import Obj
from shoal.cli.errors import CliError
from shoal.cli.resources import kind_of_object

SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Manifest:
    obj: Obj
    source: str
    """Where it came from: ``app.yaml`` or ``app.yaml (document 2)``."""


def expand(paths: list[str]) -> list[str]:
    """Files to read, in order; directories become their manifest files."""
    files: list[str] = []
    for raw in paths:
        if raw == "-":
            files.append(raw)
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not found:
                raise CliError(f"the directory {raw!r} holds no {', '.join(SUFFIXES)} files")
            files.extend(found)
        elif path.exists():
            files.append(raw)
        else:
            raise CliError(f"the path {raw!r} does not exist: check the name given to -f")
    if files.count("-") > 1:
        raise CliError("stdin ('-') can be given only once to -f")
    return files


def _yaml_documents(text: str, source: str) -> list[tuple[Any, str]]:
    docs: list[tuple[Any, str]] = []
    try:
        for index, doc in enumerate(yaml.safe_load_all(text), start=1):
            docs.append((doc, source if index == 1 else f"{source} (document {index})"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = exc.problem or exc.context or "invalid YAML"
        raise CliError(f"cannot parse {source}:{where}: {what}: fix the YAML and retry") from None
    except yaml.YAMLError as exc:
        raise CliError(f"cannot parse {source}: {exc}: fix the YAML and retry") from None
    if len(docs) > 1:
        docs[0] = (docs[0][0], f"{source} (document 1)")
    return docs


def _json_documents(text: str, source: str) -> list[tuple[Any, str]]:
    try:
        return [(json.loads(text), source)]
    except json.JSONDecodeError as exc:
        raise CliError(f"cannot parse {source}: line {exc.lineno}, column {exc.colno}: {exc.msg}: "
                       "fix the JSON and retry") from None


def _flatten(doc: Any, source: str) -> list[Manifest]:
    if doc is None:
        return []  # an empty document, e.g. after a trailing ---
    if not isinstance(doc, dict):
        raise CliError(f"{source}: expected an object (a map with apiVersion, kind and metadata), "
                       f"got {type(doc).__name__}")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        out: list[Manifest] = []
        for i, item in enumerate(doc["items"]):
            out.extend(_flatten(item, f"{source} item {i}"))
        return out
    if not isinstance(kind, str) or not kind:
        raise CliError(f"{source}: the object has no kind: add e.g. `kind: Pod`")
    kind_of_object(kind)
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not (metadata.get("name") or metadata.get("generateName")):
        raise CliError(f"{source}: the {kind} has no metadata.name: add one")
    return [Manifest(doc, source)]


def load(paths: list[str], *, stdin: TextIO | None = None) -> list[Manifest]:
    if not paths:
        raise CliError("no manifests given: use -f FILE, -f DIR or -f - (stdin)")
    manifests: list[Manifest] = []
    for file in expand(paths):
        if file == "-":
            text, source = (stdin or sys.stdin).read(), "<stdin>"
        else:
            try:
                text, source = Path(file).read_text(encoding="utf-8"), file
            except (OSError, UnicodeDecodeError) as exc:
                raise CliError(f"cannot read {file}: {exc}") from None
        is_json = source.lower().endswith(".json")
        docs = _json_documents(text, source) if is_json else _yaml_documents(text, source)
        for doc, where in docs:
            manifests.extend(_flatten(doc, where))
    if not manifests:
        raise CliError(f"no objects found in {', '.join(paths)}")
    return manifests
