"""Admission: what every request passes before the API sees it, as one ASGI middleware.

In order: the bearer token (401), the client's rate limit (429), the bound on model requests
in progress (503 with Retry-After: a full server refuses at once rather than queueing
without end), and the body size (413, counted while the body arrives, so a chunked upload
cannot get round Content-Length). It also times and counts every request for /metrics, and
turns any exception that escapes the API into a 500 answer, never a dead process.

A model request holds its place from the moment its headers arrive until its answer is
sent: a body still arriving counts too, since it is about to become decoder work.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from nlp.serving.http.config import ServeConfig
from nlp.serving.http.metrics import ServeMetrics
from nlp.util.ratelimit import ChatRateLimiter, Verdict

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MODEL_PATH = re.compile(r"/v1/models/([^/]+)/(chat|headlines|attention)")
PUBLIC_PATHS = frozenset({"/", "/healthz", "/openapi.json", "/favicon.ico"})


class BodyTooLarge(HTTPException):
    """The request body passed the configured limit while it was being read. An
    HTTPException, so that FastAPI, reading the body, passes it on as the 413 it is."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


def client_address(scope: Scope) -> str:
    """Who sent the request, for the per-client limits: the peer's address, or the client
    a trusted proxy names (`ServeConfig.trusted_proxies`, applied before the gate)."""
    return str((scope.get("client") or ("unknown", 0))[0])


def classify(path: str, models: Collection[str]) -> tuple[str, str, bool]:
    """(endpoint label, model label, is a model request) of a path, with bounded label sets
    for the metrics (unknown model names are "unknown", not the name sent)."""
    match = MODEL_PATH.fullmatch(path)
    if match:
        name = match.group(1)
        return match.group(2), name if name in models else "unknown", True
    if path == "/v1/models":
        return "models", "", False
    if path in ("/healthz", "/metrics", "/openapi.json"):
        return path.strip("/").replace(".", "_"), "", False
    if path == "/" or path.startswith(("/static/", "/fonts/")):
        return "page", "", False
    return "other", "", False


class AdmissionGate:
    """ASGI middleware around the FastAPI app (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: ServeConfig,
        metrics: ServeMetrics,
        models: Collection[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.config = config
        self.metrics = metrics
        self.models = models
        self.in_flight = 0
        self._limiter = ChatRateLimiter(
            config.rate_burst, config.rate_per_minute / 60.0, clock=clock
        )
        self._token = config.token.encode() if config.token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        endpoint, model, is_model_request = classify(path, self.models)
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
            await send(message)

        refusal = self._refusal(scope, path, is_model_request)
        try:
            if refusal is not None:
                kind, code, detail, headers = refusal
                self.metrics.errors.labels(endpoint, kind).inc()
                await _send_json(send_counted, code, {"detail": detail}, headers)
                return
            if is_model_request:
                self.in_flight += 1
                self.metrics.in_flight.inc()
            try:
                await self.app(scope, self._limited(receive), send_counted)
            finally:
                if is_model_request:
                    self.in_flight -= 1
                    self.metrics.in_flight.dec()
        except BodyTooLarge as exc:
            if not status["sent"]:
                await _send_json(send_counted, 413, {"detail": exc.detail})
        except Exception:
            log.exception("unhandled error answering %s %s", scope.get("method"), path)
            if not status["sent"]:
                await _send_json(send_counted, 500, {"detail": "internal server error"})
        finally:
            code = int(status["code"])
            if refusal is None and code >= 400:
                self.metrics.errors.labels(endpoint, _error_kind(code)).inc()
            self.metrics.requests.labels(endpoint, model, str(code)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)

    def _refusal(
        self, scope: Scope, path: str, is_model_request: bool
    ) -> tuple[str, int, str, dict[str, str]] | None:
        """(metrics kind, status, message, headers) when the request is refused before the
        API sees it; None to let it in."""
        protected = path.startswith("/v1/") or path == "/metrics"
        if protected and self._token is not None and not self._authorized(scope):
            return (
                "unauthorized", 401, "missing or wrong bearer token (Authorization: Bearer ...)",
                {"WWW-Authenticate": "Bearer"},
            )
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.config.max_body_bytes:
            return "too_large", 413, BodyTooLarge(self.config.max_body_bytes).detail, {}
        if path.startswith("/v1/"):
            client = client_address(scope)
            if self._limiter.check(client) is not Verdict.ALLOW:
                wait = self._limiter.retry_after_header(client)
                return (
                    "rate_limited", 429,
                    f"too many requests from {client}: at most {self.config.rate_burst} at "
                    f"once and {self.config.rate_per_minute:g} a minute",
                    {"Retry-After": wait},
                )
        if is_model_request and self.in_flight >= self.config.max_in_flight:
            return (
                "saturated", 503,
                f"the server is busy ({self.config.max_in_flight} model requests in "
                "progress); retry shortly",
                {"Retry-After": str(self.config.retry_after_seconds)},
            )
        return None

    def _authorized(self, scope: Scope) -> bool:
        assert self._token is not None
        headers = dict(scope.get("headers") or [])
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._token)

    def _limited(self, receive: Receive) -> Receive:
        """`receive` that raises BodyTooLarge once the body read so far passes the limit."""
        seen = 0
        limit = self.config.max_body_bytes

        async def receive_limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return receive_limited


def _error_kind(status: int) -> str:
    """The metrics kind of an error a route answered: 429 is a client's budget spent, as the
    gate's own rate limit is; 413 a body or a request's cost too large."""
    if status == 413:
        return "too_large"
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else "client_error"


async def _send_json(
    send: Send, status: int, body: object, headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
