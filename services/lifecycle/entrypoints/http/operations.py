"""What operators and orchestrators ask, without a token: liveness, readiness
and Prometheus metrics."""

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from pydantic import BaseModel

from services.lifecycle.entrypoints.http.openapi import PUBLIC, problems
from services.lifecycle.entrypoints.metrics import CONTENT_TYPE

Checks = Callable[[], Awaitable[dict[str, bool]]]
"""Readiness: each dependency's name and whether it answers."""

Metrics = Callable[[], Awaitable[bytes]]
"""The metrics in the Prometheus text exposition format."""


class Readiness(BaseModel):
    kafka: bool
    mongodb: bool


def add_operation_routes(router: APIRouter, readiness: Checks, metrics: Metrics) -> None:
    @router.get(
        "/healthz",
        tags=["operations"],
        operation_id="getHealth",
        summary="Liveness",
        openapi_extra=PUBLIC,
    )
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @router.get(
        "/readyz",
        tags=["operations"],
        operation_id="getReadiness",
        summary="Readiness",
        openapi_extra=PUBLIC,
        responses={503: {"description": "Kafka or MongoDB does not answer", "model": Readiness}},
    )
    async def readyz(response: Response) -> Readiness:
        """Kafka and MongoDB answer."""
        checks = await readiness()
        if not all(checks.values()):
            response.status_code = 503
        return Readiness.model_validate(checks)

    @router.get(
        "/metrics",
        tags=["operations"],
        operation_id="getMetrics",
        summary="Prometheus metrics",
        openapi_extra=PUBLIC,
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **problems(503, s503="MongoDB does not answer"),
        },
    )
    async def prometheus() -> Response:
        """Messages handled and refused, handling time, outbox backlog."""
        return Response(await metrics(), media_type=CONTENT_TYPE)
