"""``shoal auth can-i VERB RESOURCE [NAME]``: whether a user may do something (kubectl auth can-i).

Asked as a SubjectAccessReview of the API's RBAC (``shoal.api.admin.accessreview``) for the ``--as`` user
and groups; without ``--as`` for the trusted admin (group ``system:masters``), who may do everything.
``--list`` shows the user's rules in the namespace (SelfSubjectRulesReview). Prints ``yes`` (exit 0) or
``no`` (exit 1), as kubectl.
"""

from __future__ import annotations

import argparse

from protocol.errors import BadRequest
from protocol.kinds import resolve
from protocol.rbac import Attributes
from shoal.cli.errors import UsageError
from shoal.cli.registry import Command, add_namespace_flags, global_parent
from shoal.cli.session import Session

ADMIN = {"user": "shoal-admin", "groups": ["system:masters", "system:authenticated"]}


def _configure(parser: argparse.ArgumentParser) -> None:
    subs = parser.add_subparsers(dest="auth_command", metavar="SUBCOMMAND", required=True)
    can_i = subs.add_parser("can-i", help="whether an action is allowed", parents=[global_parent()],
                            description="whether the user (--as, --as-group) may do VERB on RESOURCE [NAME]")
    can_i.add_argument("verb", nargs="?", help="get, list, watch, create, update, patch, delete, "
                                               "deletecollection, or *")
    can_i.add_argument("resource", nargs="?", help="a resource (pods, deploy, pods/log, *), or a URL path "
                                                   "starting with /")
    can_i.add_argument("name", nargs="?", help="the object's name")
    can_i.add_argument("--subresource", default="", help="a subresource (log, exec, scale)")
    can_i.add_argument("--list", action="store_true", help="list every rule the user has in the namespace")
    add_namespace_flags(can_i)


def attributes(verb: str, resource: str, name: str | None, subresource: str, namespace: str) -> Attributes:
    if resource.startswith("/"):
        return Attributes(verb, path=resource)
    resource, _, sub = resource.partition("/")
    group = ""
    if resource != "*":
        try:
            info = resolve(resource)
            resource, group = info.plural, info.group
            namespace = namespace if info.namespaced else ""
        except BadRequest:  # not a kind Shoal stores (selfsubjectaccessreviews.authorization.k8s.io)
            resource, _, group = resource.partition(".")
    return Attributes(verb, resource, group, namespace, name or "", subresource or sub)


async def _run(session: Session, args: argparse.Namespace) -> int:
    client = await session.trusted_client()
    subject = session.impersonate or ADMIN
    namespace = "" if args.all_namespaces else session.namespace
    if args.list:
        reply = await client.admin("rulesreview", {"subject": subject, "namespace": namespace or "default"})
        print(f"{'Resources':<50} {'Non-Resource URLs':<20} {'Resource Names':<16} Verbs")
        for rule in reply["status"]["resourceRules"]:
            for resource in rule["resources"]:
                for group in rule["apiGroups"]:
                    shown = f"{resource}.{group}" if group else resource
                    print(f"{shown:<50} {'[]':<20} {rule.get('resourceNames', [])!s:<16} {rule['verbs']}")
        for rule in reply["status"]["nonResourceRules"]:
            print(f"{'':<50} {rule['nonResourceURLs']!s:<20} {'[]':<16} {rule['verbs']}")
        return 0
    if not args.verb or not args.resource:
        raise UsageError("auth can-i needs VERB and RESOURCE (or --list)")
    attrs = attributes(args.verb, args.resource, args.name, args.subresource, namespace)
    reply = await client.admin("accessreview", {"subject": subject, "spec": attrs.to_wire()})
    allowed = bool(reply["status"].get("allowed"))
    print("yes" if allowed else "no")
    return 0 if allowed else 1


COMMAND = Command(name="auth", help="inspect authorization (auth can-i)", configure=_configure, run=_run,
                  epilog="examples:\n  shoal auth can-i list pods -n team --as system:serviceaccount:team:robot\n"
                         "  shoal auth can-i create deployments --as alice --as-group devs\n"
                         "  shoal auth can-i --list -n team --as system:serviceaccount:team:robot")
