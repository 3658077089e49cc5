"""The HTTP API (FastAPI): the app, its routes (`nlp.serving.http.routes`, one module per
concern) and the middleware around it.

Every route is a thin translation onto code the rest of the project already runs: chat goes
to the model's `ChatResponder` (commands, per-conversation context and settings, re-ranking,
micro-batching), headlines and attention pictures are decoded through that responder's
micro-batcher (so a model's TensorFlow work has one queue and one thread whatever the
endpoint), headline records are built by the batch job's own `article_result` and
`candidates_record`, and a request's `decoding` object is merged onto the bundle's tuned
settings by `merge_options`, the rule behind every decoding flag.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from nlp.serving.http.config import ServeConfig
from nlp.serving.http.gate import AdmissionGate
from nlp.serving.http.metrics import ServeMetrics
from nlp.serving.http.model_requests import ModelRequests
from nlp.serving.http.models import ServedModel
from nlp.serving.http.routes.attention import add_attention_routes
from nlp.serving.http.routes.chat import add_chat_routes
from nlp.serving.http.routes.headlines import add_headline_routes
from nlp.serving.http.routes.page import add_page_routes
from nlp.serving.http.routes.status import add_status_routes

log = logging.getLogger(__name__)


def make_app(
    models: Mapping[str, ServedModel],
    config: ServeConfig,
    metrics: ServeMetrics | None = None,
) -> FastAPI:
    """The ASGI app serving `models` (already loaded and warmed up) within `config`'s limits.
    The admission gate (token, rate, in-flight bound, body size, metrics) wraps it."""
    metrics = metrics or ServeMetrics()
    requests = ModelRequests(models, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for model in models.values():  # finish the batches in progress, stop the threads
            await model.responder.aclose()

    app = FastAPI(
        title="s2s",
        summary="Chat and headline generation with seq2seq models",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; /openapi.json is the contract
        redoc_url=None,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's 422 shape without echoing the input back (it may be 10,000 characters);
        a body that is not JSON at all is the documented 400 (`nlp.serving.http.schema`)."""
        unreadable = [e for e in exc.errors() if e.get("type") == "json_invalid"]
        if unreadable:
            where = unreadable[0].get("ctx", {}).get("error", "")
            detail = "the body cannot be read as JSON" + (f": {where}" if where else "")
            return JSONResponse({"detail": detail}, status_code=400)
        errors = [
            {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""),
             "type": error.get("type", "")}
            for error in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    add_page_routes(app)
    add_status_routes(app, models, config, metrics)
    add_headline_routes(app, requests, config)
    add_chat_routes(app, requests, config)
    add_attention_routes(app, requests, config)
    return app


def gated_app(
    models: Mapping[str, ServedModel], config: ServeConfig, metrics: ServeMetrics | None = None
) -> Any:
    """`make_app` behind the admission gate; only when origins are given, CORS outside it
    (preflights carry no token, and refusals need CORS headers to be readable); and only
    when proxies are trusted, uvicorn's ProxyHeadersMiddleware outermost, so that the gate
    and the API see the client a trusted proxy names (X-Forwarded-For) and nobody else can
    name one."""
    metrics = metrics or ServeMetrics()
    app: Any = AdmissionGate(
        make_app(models, config, metrics), config=config, metrics=metrics, models=set(models)
    )
    if config.cors_origins:
        app = CORSMiddleware(
            app,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After", "X-S2S-Output", "X-S2S-Provenance"],
        )
    if config.trusted_proxies:
        app = ProxyHeadersMiddleware(app, trusted_hosts=list(config.trusted_proxies))
    return app
