"""A no-op Serve application: the floor that load measurements of the fleet's endpoint are judged against.

It answers ``POST /v1/predict`` with a constant after reading the body, so a load test against it measures what
Ray Serve's proxy, the HTTP round trip and the client cost on the machine, with no parsing, features or model.
``benchmarks/serve_load.py`` and ``tests/serving/test_serving_faults.py`` run it beside the fleet's application
and report the fleet's throughput as a share of it (a 2-core VM's floor has ranged from ~60 to 212 req/s).
"""

# No ``from __future__ import annotations``: FastAPI reads the route's ``request: Request`` annotation at run time.
from fastapi import FastAPI, Request
from ray import serve

__all__ = ["noop_app"]

_api = FastAPI(title="fleet no-op floor")


@serve.ingress(_api)
class NoOp:
    """Reads the request body and answers ``{"p_up": 0.5}``."""

    @_api.post("/v1/predict")
    async def predict(self, request: Request) -> dict:
        await request.body()
        return {"p_up": 0.5}


def noop_app(*, replicas: int = 1, num_cpus: float = 0.5, max_ongoing_requests: int = 64):
    """The bound no-op application (``serve.run(noop_app(), route_prefix=...)``).

    Args:
        replicas: Serve replicas; num_cpus: CPUs each replica asks Ray for (fractions allowed);
        max_ongoing_requests: per replica, as for the fleet's own deployment.
    """
    return serve.deployment(NoOp, num_replicas=replicas, ray_actor_options={"num_cpus": num_cpus},
                            max_ongoing_requests=max_ongoing_requests).bind()
