"""Defaulting, as Kubernetes' API server does it: the kind's strategy (``protocol.kinds``) fills in absent
fields, create-time admission defaults and the initial status. Pure."""

from __future__ import annotations

import copy
import secrets

from protocol.kinds import KindInfo, strategy_for
from protocol.objects import Obj

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(n))


def apply_defaults(obj: Obj, info: KindInfo) -> None:
    """Fill in the kind's defaults in place (only fields that are absent)."""
    obj.setdefault("apiVersion", info.api_version)
    strategy_for(info).default(obj)


def admit_new(obj: Obj, info: KindInfo) -> None:
    """Create-time admission defaults (pods' default tolerations): not re-applied on update."""
    strategy_for(info).admit_new(obj)


def create_status(obj: Obj, info: KindInfo) -> None:
    """Status a new object starts with (what a client sends as status on create is dropped)."""
    strategy_for(info).initial_status(obj)


def copy_object(obj: Obj) -> Obj:
    return copy.deepcopy(obj)
