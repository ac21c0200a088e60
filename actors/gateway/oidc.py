"""The ServiceAccount issuer's discovery documents, as the Kubernetes API server serves them.

``/.well-known/openid-configuration`` names the issuer and where its keys are; ``/openid/v1/jwks`` is the JWK
Set of every key that verifies tokens (the active one and those kept since a rotation). Anyone holding them
verifies a ServiceAccount token without asking the cluster (an external service, a cloud's workload identity).
Both are public here (Kubernetes gives them to every authenticated user and operators commonly open them to
all; they hold public keys only). The API actors answer ``shoal.api.admin.oidc`` with the issuer and keys.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from actors.gateway.http import json_response
from runtime.client import ApiClient

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
CACHE_CONTROL = "public, max-age=60"
"""Short: a verifier meeting a new key id (after a rotation) learns it within a minute even if it never refetches."""


def discovery_document(issuer: str, jwks_uri: str) -> dict[str, Any]:
    return {"issuer": issuer, "jwks_uri": jwks_uri, "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["ES256"]}


def add_routes(app: web.Application, client: ApiClient) -> None:
    async def configuration(request: web.Request) -> web.Response:
        answer = await client.admin("oidc")
        response = json_response(discovery_document(str(answer["issuer"]), str(answer["jwksUri"])))
        response.headers["Cache-Control"] = CACHE_CONTROL
        return response

    async def jwks(request: web.Request) -> web.Response:
        answer = await client.admin("oidc")
        response = web.json_response(answer["jwks"], content_type="application/jwk-set+json")
        response.headers["Cache-Control"] = CACHE_CONTROL
        return response

    app.router.add_get(DISCOVERY_PATH, configuration)
    app.router.add_get(JWKS_PATH, jwks)
