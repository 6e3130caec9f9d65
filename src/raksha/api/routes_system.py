"""GET /healthz (open) and GET /metrics (admin or the metrics token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from raksha.api.deps import Context, Principal, require
from raksha.api.metrics import CONTENT_TYPE
from raksha.api.schemas import Health
from raksha.auth.access import Rule

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=Health)
def healthz(ctx: Context, _who: Annotated[Principal, Depends(require(Rule.PUBLIC))]) -> Health:
    """Liveness and database reachability; reveals nothing else."""
    db = ctx.store.ping()
    return Health(status="ok" if db else "degraded", database=db)


@router.get("/openapi.json", include_in_schema=False)
def openapi_schema(
    request: Request, _who: Annotated[Principal, Depends(require(Rule.LOGGED_IN))]
) -> dict[str, Any]:
    """The OpenAPI schema, for logged-in users only (it maps the whole API)."""
    schema: dict[str, Any] = request.app.openapi()
    return schema


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(ctx: Context, _who: Annotated[Principal, Depends(require(Rule.METRICS))]) -> Response:
    """Prometheus metrics (`Authorization: Bearer $RAKSHA_METRICS_TOKEN`, or an admin)."""
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)
