"""``python -m actors.api``: run one API actor."""

from __future__ import annotations

import argparse
from pathlib import Path

from actors.api import encryption
from actors.api.cache import WINDOW_BYTES
from actors.api.server import ApiActor, ApiSettings
from actors.api.streams import EVENTS_MAX_BYTES
from actors.api.tokens import TokenSettings
from protocol import satoken
from protocol.network import DEFAULT_CLUSTER_CIDR, DEFAULT_SERVICE_CIDR
from runtime.actor import actor_main


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replicas", type=int, default=1, help="datastore replicas (3 on a NATS cluster)")
    parser.add_argument("--watch-window", type=int, default=100_000,
                        help="changes kept for resuming watches; older resumes get Expired")
    parser.add_argument("--watch-window-mib", type=int, default=WINDOW_BYTES // 2**20,
                        help="MiB of objects the kept changes may carry, at most (the oldest go first)")
    parser.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR, help="where Service cluster IPs come from")
    parser.add_argument("--cluster-cidr", default=DEFAULT_CLUSTER_CIDR,
                        help="the pod addresses (only checked: they must not overlap the service CIDR)")
    parser.add_argument("--encryption-config", default=None,
                        help="EncryptionConfiguration file for Secrets at rest (created with a fresh key when "
                             "absent; every API actor of a cluster needs the same file)")
    parser.add_argument("--no-audit", action="store_true", help="do not publish audit records (SHOAL_AUDIT)")
    parser.add_argument("--event-ttl", type=float, default=3600.0,
                        help="seconds an Event is kept after its last occurrence (Kubernetes' --event-ttl)")
    parser.add_argument("--events-max-mib", type=int, default=EVENTS_MAX_BYTES // 2**20,
                        help="MiB of Events kept in memory (each NATS server holds ~3x it; the oldest go first)")
    parser.add_argument("--bulk-writes", type=int, default=ApiSettings.bulk_writes,
                        help="datastore writes of kubelets and controllers (binds, status) in flight at once; more "
                             "wait in the API actor, so people's writes queue behind at most these (0, the default: no "
                             "bound; a bound helps a person's write at moderate load and costs throughput at scale)")
    parser.add_argument("--group-commit", type=int, default=ApiSettings.group_commit, metavar="SENDS",
                        help="datastore writes that wait for one another leave as one atomic batch, with this many "
                             "sends in flight (0: every write alone; a single-replica datastore only)")
    parser.add_argument("--service-account-issuer", default=satoken.DEFAULT_ISSUER,
                        help="the iss of ServiceAccount tokens (and the default API audience)")
    parser.add_argument("--api-audiences", default="",
                        help="comma-separated audiences the API accepts tokens for (default: the issuer)")
    parser.add_argument("--service-account-jwks-uri", default=None,
                        help="the jwks_uri of the discovery document (default: <issuer>/openid/v1/jwks)")
    parser.add_argument("--service-account-max-token-expiration", type=int, default=None,
                        help="seconds: longer TokenRequests are issued for this long")


def _settings(a: argparse.Namespace) -> ApiSettings:
    if a.encryption_config:
        encryption.ensure_config(Path(a.encryption_config))
    token_settings = TokenSettings(
        issuer=a.service_account_issuer, audiences=tuple(x for x in a.api_audiences.split(",") if x),
        jwks_uri=a.service_account_jwks_uri, max_expiration=a.service_account_max_token_expiration)
    return ApiSettings(replicas=a.replicas, window=a.watch_window, window_bytes=a.watch_window_mib * 2**20,
                       encryption_config=a.encryption_config,
                       audit=not a.no_audit, service_cidr=a.service_cidr, cluster_cidr=a.cluster_cidr,
                       tokens=token_settings, event_ttl=a.event_ttl, events_max_bytes=a.events_max_mib * 2**20,
                       bulk_writes=a.bulk_writes, group_commit=a.group_commit)


def main(argv: list[str] | None = None) -> int:
    return actor_main("Shoal API actor", _arguments,
                      lambda a: ApiActor(_settings(a)), argv)


if __name__ == "__main__":
    raise SystemExit(main())
