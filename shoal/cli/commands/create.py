"""``shoal create``: create objects from files (never update), or generate one (``create namespace NAME``,
``create job NAME --from=cronjob/X`` or ``--image=IMAGE``; kubectl's ``-- COMMAND`` is not taken: argparse
cannot mix it with the sub-command's flags, write a manifest for a command).

Generators are sub-commands in ``GENERATORS``: a name, aliases, help, the extra flags and an async builder
(it may read the cluster, as ``job --from`` reads the CronJob); later ones (configmap...) add an entry.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from actors.controllers.cronjob_plan import job_from_cronjob
from protocol.kinds import KindInfo
from protocol.objects import Obj, meta
from runtime.client import ApiClient
from shoal.cli.commands._objects import write_all
from shoal.cli.commands._target import one_target
from shoal.cli.errors import UsageError
from shoal.cli.manifests import Manifest, load
from shoal.cli.registry import VALIDATION, Command, add_file_flags, add_namespace_flags, global_parent
from shoal.cli.session import Session


async def create_object(client: ApiClient, info: KindInfo, namespace: str | None,
                        obj: Obj) -> tuple[str, str]:
    created = await client.create(obj, namespace)
    return str(meta(created).get("name")), "created"


Builder = Callable[[Session, argparse.Namespace], Awaitable[Obj]]


async def _namespace(session: Session, args: argparse.Namespace) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": args.name}}


def _job_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="from_", metavar="cronjob/NAME",
                        help="make the Job from this CronJob's jobTemplate (as kubectl: owned by the CronJob)")
    parser.add_argument("--image", help="the image of the Job's one container (it runs the image's command)")


async def _job(session: Session, args: argparse.Namespace) -> Obj:
    if bool(args.from_) == bool(args.image):
        raise UsageError("create job needs either --from=cronjob/NAME or --image=IMAGE")
    if args.from_:
        info, name = one_target([args.from_], allowed=("CronJob",))
        client = await session.client()
        cronjob = await client.get(info, name, session.namespace)
        return job_from_cronjob(cronjob, args.name)
    container: Obj = {"name": args.name, "image": args.image}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": args.name},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}}


def _no_flags(parser: argparse.ArgumentParser) -> None:
    return None


GENERATORS: dict[str, tuple[tuple[str, ...], str, Callable[[argparse.ArgumentParser], None], Builder]] = {
    "namespace": (("ns",), "create a namespace", _no_flags, _namespace),
    "job": ((), "create a job from a cronjob (--from=cronjob/NAME) or an image", _job_flags, _job),
}


def _configure(parser: argparse.ArgumentParser) -> None:
    add_file_flags(parser, what="create")
    add_namespace_flags(parser, all_namespaces=False)
    subs = parser.add_subparsers(dest="generator", metavar="KIND")
    for name, (aliases, help_text, flags, _) in GENERATORS.items():
        sub = subs.add_parser(name, aliases=list(aliases), help=help_text, parents=[global_parent()])
        sub.add_argument("name", metavar="NAME")
        flags(sub)
        add_namespace_flags(sub, all_namespaces=False)


async def _run(session: Session, args: argparse.Namespace) -> int:
    generator = getattr(args, "generator", None)
    if generator is None:
        if not args.filename:
            raise UsageError("say what to create: `shoal create -f FILE` or `shoal create namespace NAME`")
        (await session.client()).field_validation = VALIDATION[getattr(args, "validate", "warn")]
        return await write_all(session, load(args.filename), "creating", create_object)
    if args.filename:
        raise UsageError("give either -f or a kind to create, not both")
    canonical = next(k for k, (aliases, *_) in GENERATORS.items() if generator == k or generator in aliases)
    obj = await GENERATORS[canonical][3](session, args)
    return await write_all(session, [Manifest(obj, "")], "creating", create_object)


COMMAND = Command(
    name="create", help="create objects from files, or a namespace or job", configure=_configure, run=_run,
    epilog="examples:\n  shoal create namespace staging\n  shoal create -f pod.yaml\n"
           "  shoal create job backup-now --from=cronjob/backup\n  shoal create job hello --image=busybox",
)
