"""What the server is: liveness, its Prometheus metrics, and the models it serves."""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response

from nlp.serving.http.config import ServeConfig
from nlp.serving.http.metrics import CONTENT_TYPE, ServeMetrics
from nlp.serving.http.models import ServedModel
from nlp.serving.http.schema import refusals


def add_status_routes(
    app: FastAPI, models: Mapping[str, ServedModel], config: ServeConfig, metrics: ServeMetrics
) -> None:
    @app.get("/healthz", summary="Liveness: the process answers and its models are loaded")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "models": sorted(models)}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response,
             responses=refusals(401))
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/v1/models", summary="Served models: tasks, languages, decoding, metadata",
             responses=refusals(401, 429))
    async def list_models() -> dict[str, Any]:
        # `limits`: what a request may hold, so a client (the page) can say so before asking
        return {
            "models": [models[name].describe() for name in sorted(models)],
            "limits": {"max_articles": config.max_articles,
                       "max_text_chars": config.max_text_chars},
        }
