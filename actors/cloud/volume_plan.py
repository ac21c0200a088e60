"""Pure decision of the cloud volume controller: every claim a pod mounts has a provider volume.

A pod volume ``persistentVolumeClaim: {claimName: C}`` in namespace N needs the provider volume
``shoal-N-C``, labelled with its namespace and claim (created if absent, kept when unused). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.objects import Obj, meta


@dataclass(frozen=True, slots=True)
class EnsureVolume:
    name: str
    labels: tuple[tuple[str, str], ...]


def volume_name(namespace: str, claim: str) -> str:
    return f"shoal-{namespace}-{claim}"


def plan(pod: Obj) -> list[EnsureVolume]:
    """The provider volumes ``pod``'s claims need, in the order of its volumes."""
    namespace = meta(pod).get("namespace") or "default"
    actions = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            actions.append(EnsureVolume(volume_name(namespace, claim),
                                        (("io.shoal.namespace", namespace), ("io.shoal.claim", claim))))
    return actions
