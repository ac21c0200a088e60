"""What the user typed to name resources (``po``, ``deploy/web``, ``pods,svc``) as kinds and names."""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.errors import BadRequest
from protocol.kinds import KINDS, KindInfo, by_kind, in_category, resolve
from shoal.cli.errors import CliError


def resolve_kind(text: str) -> KindInfo:
    try:
        return resolve(text)
    except BadRequest:
        raise CliError(f"the server doesn't have a resource type {text!r}: run `shoal api-resources` to see "
                       f"the kinds it serves (e.g. {', '.join(k.plural for k in KINDS[:5])}...)") from None


def kind_of_object(kind: str) -> KindInfo:
    try:
        return by_kind(kind)
    except BadRequest:
        raise CliError(f"unknown kind {kind!r}: run `shoal api-resources` to see the kinds Shoal serves "
                       "(kinds are case-sensitive: Pod, Deployment, ...)") from None


def qualified(info: KindInfo) -> str:
    """``pod``, ``deployment.apps``, ``lease.coordination.k8s.io``: how kubectl names a resource type."""
    return f"{info.singular}.{info.group}" if info.group else info.singular


def display_name(info: KindInfo, name: str) -> str:
    return f"{qualified(info)}/{name}"


@dataclass
class Target:
    info: KindInfo
    names: list[str] = field(default_factory=list)


def parse_targets(words: list[str]) -> list[Target]:
    """``pods a b``: Pod a, b. ``pod/a svc/b``: Pod a, Service b. ``pods,svc``: both kinds; ``all``: the kinds
    of the ``all`` category (``KindInfo.categories``), as kubectl."""
    if not words:
        raise CliError("you must name a resource type, e.g. `shoal get pods`; run `shoal api-resources` "
                       "for the list")
    if any("/" in w for w in words):
        targets: list[Target] = []
        for word in words:
            kind, sep, name = word.partition("/")
            if not sep or not kind or not name:
                raise CliError(f"{word!r}: when one argument is TYPE/NAME, every argument must be TYPE/NAME")
            info = resolve_kind(kind)
            existing = next((t for t in targets if t.info == info), None)
            if existing is None:
                targets.append(Target(info, [name]))
            else:
                existing.names.append(name)
        return targets
    kinds: list[KindInfo] = []
    for word in filter(None, words[0].split(",")):
        for info in in_category("all") if word.lower() == "all" else (resolve_kind(word),):
            if info not in kinds:
                kinds.append(info)
    if len(kinds) > 1 and len(words) > 1:
        raise CliError("names cannot be given with several resource types: use TYPE/NAME instead")
    return [Target(info, list(words[1:])) for info in kinds]
