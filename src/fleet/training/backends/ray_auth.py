"""A clear refusal when a Ray cluster wants an authentication token that this shell does not supply.

A ``ray start`` cluster with token authentication (``RAY_AUTH_MODE=token``) answers a client without the right
token ``Unauthenticated: ... InvalidAuthToken``; ``ray.init`` only logs that on stderr, retries for a while
(~20 s here) and raises ``ConnectionError: Failed to connect``. :func:`check_cluster_token` asks the cluster's
GCS once (``NodeInfoGcsService/GetClusterId``, the call ``ray.init`` starts with), sending the token ``ray.init``
would send, and turns that answer into one line that says how to supply the token.
"""

from __future__ import annotations

import re

from fleet.errors import ConfigError

#: What a token cluster answers a client whose token is missing or wrong (gRPC status and Ray's message).
_REFUSED = re.compile(r"Unauthenticated|InvalidAuthToken|UNAUTHENTICATED")


def token_hint(address: str, answer: str) -> str:
    """The one-line refusal for ``address`` (``answer``: the cluster's own words, shortened)."""
    return (f"--address={address!r}: the Ray cluster requires an authentication token and refused this shell's "
            f"({answer}); supply it: export RAY_AUTH_MODE=token and put the cluster's token (`ray get-auth-token` "
            "on the head node) in ~/.ray/auth_token, or set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH to a file)")


def _auth_metadata() -> tuple:
    """The gRPC metadata ``ray.init`` would attach (Ray's own helpers; empty when they are unavailable)."""
    try:
        from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available
        from ray._private.authentication.grpc_authentication_client_interceptor import (
            _get_authentication_metadata_tuple,
        )

        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
        return tuple(_get_authentication_metadata_tuple())
    except Exception:  # noqa: BLE001 -- another Ray version: probe without a token
        return ()


def check_cluster_token(address: str | None, timeout: float = 5.0) -> None:
    """Raise :class:`ConfigError` (one line) when the cluster at ``address`` refuses this shell's token.

    Only a plain ``HOST:PORT`` is probed (``auto``, ``local``, ``ray://`` and None are left to ``ray.init``); an
    unreachable address or any other answer is also left to ``ray.init`` and its own error.

    Raises:
        ConfigError: the cluster answered Unauthenticated / InvalidAuthToken.
    """
    if not address or "://" in address or not re.fullmatch(r"[^:\s]+:\d+", address):
        return
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout, metadata=_auth_metadata())
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else None
            details = (err.details() if hasattr(err, "details") else "") or ""
            words = f"{getattr(code, 'name', code)}: {details}"
            if code == grpc.StatusCode.UNAUTHENTICATED or _REFUSED.search(details):
                raise ConfigError(token_hint(address, words.strip()[:160])) from None
