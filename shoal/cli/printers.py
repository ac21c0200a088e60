"""Output formats of ``get`` and friends: aligned tables, YAML, JSON and ``TYPE/NAME`` lines."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from protocol.kinds import Column, KindInfo
from protocol.objects import Obj, labels_of, meta, name_of
from shoal.cli.columns import columns_for
from shoal.cli.resources import display_name

FORMATS = ("wide", "yaml", "json", "name")
GAP = "   "


def to_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 16)


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=4, ensure_ascii=False)


def as_list(items: list[Obj]) -> Obj:
    """Several objects in one YAML/JSON document, as kubectl prints them."""
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def render_document(obj: Any, fmt: str) -> str:
    return to_json(obj) + "\n" if fmt == "json" else to_yaml(obj)


def format_labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


@dataclass
class Table:
    """Rows of one kind; ``lines`` pads the columns as wide as their widest cell, three spaces apart."""

    info: KindInfo
    wide: bool = False
    with_namespace: bool = False
    show_labels: bool = False
    kind_prefix: bool = False
    """NAME shows ``pod/web``: set when several kinds are printed together."""
    now: float = field(default_factory=time.time)
    widths: list[int] = field(default_factory=list)

    @property
    def columns(self) -> list[Column]:
        return columns_for(self.info.kind, wide=self.wide)

    def header(self) -> list[str]:
        headers = [c.name for c in self.columns]
        if self.with_namespace:
            headers.insert(0, "NAMESPACE")
        if self.show_labels:
            headers.append("LABELS")
        return headers

    def row(self, obj: Obj) -> list[str]:
        cells = []
        for column in self.columns:
            if column.name == "NAME" and self.kind_prefix:
                cells.append(display_name(self.info, name_of(obj)))
            else:
                cells.append(column.value(obj, self.now))
        if self.with_namespace:
            cells.insert(0, str(meta(obj).get("namespace") or ""))
        if self.show_labels:
            cells.append(format_labels(labels_of(obj)))
        return cells

    def lines(self, rows: list[list[str]]) -> list[str]:
        """Format ``rows`` (the first usually the header); widths are remembered for later rows."""
        for row in rows:
            for i, cell in enumerate(row):
                if i >= len(self.widths):
                    self.widths.append(len(cell))
                else:
                    self.widths[i] = max(self.widths[i], len(cell))
        out = []
        for row in rows:
            padded = [cell.ljust(self.widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
            out.append(GAP.join(padded).rstrip())
        return out
