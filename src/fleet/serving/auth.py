"""The optional API key of the HTTP API: a bearer token on every route but the open ones, checked by a pure ASGI
middleware against a salted digest, compared in constant time; and the OpenAPI security scheme that declares it.

The replica keeps (salt, SHA-256 of salt + token), never the token (:func:`token_digest`); the settings of the
replica running in this process are :data:`fleet.serving.app._REPLICA` (``api_key``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from fleet.errors import ConfigError


#: Routes that answer without the bearer token: liveness probes, and the document a client needs to learn the API.
OPEN_PATHS = frozenset({"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
#: Name of the bearer-token security scheme in the OpenAPI document.
SECURITY_SCHEME = "bearerAuth"


def token_digest(token: str, salt: str | None = None) -> tuple[str, str]:
    """(salt, SHA-256 hex of salt + token): what a replica keeps instead of the token itself.

    Raises:
        ConfigError: an empty token.
    """
    if not token:
        raise ConfigError("the API key is empty: set the environment variable to a non-empty token")
    salt = secrets.token_hex(16) if salt is None else salt
    return salt, hashlib.sha256((salt + token).encode()).hexdigest()


def token_matches(presented: str, expected: tuple[str, str]) -> bool:
    """Whether ``presented`` is the token behind ``expected`` (from :func:`token_digest`), compared in constant
    time (:func:`hmac.compare_digest` on the digests, so the time does not depend on where they differ)."""
    salt, digest = expected
    return hmac.compare_digest(hashlib.sha256((salt + presented).encode()).hexdigest(), digest)


class BearerAuthMiddleware:
    """Pure ASGI middleware: 401 unless ``Authorization: Bearer <token>`` carries the replica's API key.

    Args:
        expected: () -> the replica's (salt, digest), or None when it has no key (then every request passes).
        error: (status, loc, msg, type, headers) -> the API's error response (one shape for every error).

    :data:`OPEN_PATHS` stay open. The 401 body is the API's error shape (``type`` ``unauthorized``) with
    ``WWW-Authenticate: Bearer`` (RFC 6750, sec. 3).
    """

    def __init__(self, app, *, expected, error):
        self.app, self.expected, self.error = app, expected, error

    async def __call__(self, scope, receive, send):
        expected = self.expected()
        if scope["type"] != "http" or expected is None or scope.get("path") in OPEN_PATHS:
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() == "bearer" and presented and token_matches(presented.strip(), expected):
            return await self.app(scope, receive, send)
        msg = ("missing bearer token: send 'Authorization: Bearer <API key>'" if not header
               else "invalid bearer token")
        return await self.error(401, ["header", "authorization"], msg, "unauthorized",
                                headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)


def key_from_env(name: str) -> tuple[str, str]:
    """(salt, digest) of the API key held in environment variable ``name`` of this process (the token is not kept).

    Raises:
        ConfigError: the variable is unset or empty.
    """
    token = os.environ.get(name, "")
    if not token:
        raise ConfigError(f"api key: the environment variable {name} is not set (or empty) where fleet serve or the "
                          f"replica runs; export {name}=<token> first")
    return token_digest(token)


def replica_api_key(api_key: tuple[str, str] | None, api_key_env: str | None) -> tuple[str, str] | None:
    """The key a replica checks: the digest it was given (``fleet serve --api-key-env``, the token stays in the
    CLI's process), else the token in its own environment variable ``api_key_env`` (a Serve config / RayService,
    where a Kubernetes Secret sets it), else None (no authentication).

    Raises:
        ConfigError: ``api_key_env`` names a variable that is unset or empty in the replica's environment.
    """
    if api_key is not None:
        return (str(api_key[0]), str(api_key[1]))
    return key_from_env(api_key_env) if api_key_env else None



def add_security(doc: dict) -> None:
    """Declare the bearer-token scheme, require it on every route outside :data:`OPEN_PATHS`, and document the
    401 those routes answer without it."""
    doc.setdefault("components", {}).setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http", "scheme": "bearer", "description": "The API key given to `fleet serve --api-key-env`."}
    unauthorized = {"description": "missing or invalid bearer token", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    for path, operations in doc["paths"].items():
        if path in OPEN_PATHS:
            continue
        for operation in operations.values():
            operation["security"] = [{SECURITY_SCHEME: []}]
            operation.setdefault("responses", {})["401"] = unauthorized
