"""Start and stop the fleet's Serve application, and write Serve config files.

``start`` / ``stop`` back ``fleet serve RUN_DIR``; :func:`serve_config` backs
``fleet serve build RUN_DIR -o serve_config.yaml`` (a config for ``serve deploy`` and for the
``serveConfigV2`` of a KubeRay RayService).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import ray
from ray import serve

from fleet.errors import ConfigError
from fleet.ray_logs import divert_ray_logs, ray_log_path
from fleet.serving.app import (APP_NAME, DEFAULT_MAX_BODY_BYTES, DEFAULT_NUM_CPUS, DEPLOYMENT_NAME, build_app)
from fleet.serving.predictor import FleetPredictor


def start(run_dir: str | Path, *, address: str | None = None, host: str = "127.0.0.1", port: int = 8000,
          replicas: int = 1, num_cpus: float = DEFAULT_NUM_CPUS, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
          batching: bool = True, max_queued_requests: int = -1,
          api_key: tuple[str, str] | None = None) -> tuple[str, bool]:
    """Deploy the run on Ray Serve and return (base URL, whether this call started Ray).

    Args:
        run_dir: run directory written by ``fleet train``.
        address: Ray cluster to join; None uses ``RAY_ADDRESS`` or starts a local Ray.
        host, port: where Serve's HTTP proxy listens.
        replicas: replicas of the ingress deployment; num_cpus: CPUs each reserves.
        max_queued_requests: requests waiting beyond the replicas' capacity before Serve answers 503 (-1: no limit).
        api_key: (salt, SHA-256) of the API key (:func:`fleet.serving.auth.token_digest`): every route but
            ``/healthz`` and the OpenAPI document then needs it as a bearer token. None: no authentication.

    Raises:
        RunDirectoryError: incomplete run directory. ConfigError: bad replicas / num_cpus, or no Ray at address.
    """
    if replicas < 1:
        raise ConfigError(f"--replicas={replicas}: expected an integer >= 1")
    if num_cpus <= 0:
        raise ConfigError(f"--num-cpus={num_cpus}: expected a number > 0")
    app = build_app(run_dir, replicas=replicas, num_cpus=num_cpus, max_body_bytes=max_body_bytes, batching=batching,
                    max_queued_requests=max_queued_requests, api_key=api_key)
    started = False
    divert_ray_logs()
    if not ray.is_initialized():
        try:
            # The replicas', proxy's and controller's own lines stay in Ray's session logs (log_to_driver=False):
            # the console shows fleet's lines only.
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        except ConnectionError as err:
            raise ConfigError(f"--address={address!r}: could not connect to a Ray cluster ({err})") from None
        started = True
    divert_ray_logs()
    serve.start(http_options={"host": host, "port": port})
    serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
    divert_ray_logs()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{shown}:{port}", started


def stop(shutdown_ray: bool) -> None:
    """Shut Serve down (and Ray, when :func:`start` started it).

    What Ray prints while it stops goes to :func:`fleet.ray_logs.ray_log_path`, not the console: its error
    listener reports the controller's own ``ray.kill`` at the end of a graceful shutdown as a failed task.
    """
    import contextlib

    with open(ray_log_path(), "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        serve.shutdown()
        if shutdown_ray:
            ray.shutdown()


def serve_config(run_dir: str | Path, *, host: str = "0.0.0.0", port: int = 8000, replicas: int = 1,
                 num_cpus: float = DEFAULT_NUM_CPUS, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 api_key_env: str | None = None) -> dict[str, Any]:
    """A Serve config (``ServeDeploySchema``) for the run, as plain data ready for YAML.

    ``api_key_env``: the environment variable that holds the API key in every replica's process (on KubeRay, set
    from a Secret); the config names the variable, never the key.

    The run directory path is written as an absolute path: on a cluster it must be readable at that
    path from every node (a shared volume, or a path baked into the image).

    Raises:
        RunDirectoryError: incomplete run directory.
    """
    run = Path(run_dir).resolve()
    FleetPredictor(run)
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": host, "port": port},
        "applications": [{
            "name": APP_NAME,
            "route_prefix": "/",
            "import_path": "fleet.serving.app:app_builder",
            "args": {"run_dir": str(run), "max_body_bytes": max_body_bytes,
                     **({"api_key_env": api_key_env} if api_key_env else {})},
            "deployments": [{"name": DEPLOYMENT_NAME, "num_replicas": replicas,
                             "ray_actor_options": {"num_cpus": num_cpus}}],
        }],
    }
