"""The HTTP API (FastAPI): routes, request and response models, and the web page.

Every route is a thin translation onto code the rest of the project already runs: chat goes
to the model's `ChatResponder` (commands, per-conversation context and settings, re-ranking,
micro-batching), headlines and attention pictures are decoded through that responder's
micro-batcher (so a model's TensorFlow work has one queue and one thread whatever the
endpoint), headline records are built by the batch job's own `article_result` and
`candidates_record`, and a request's `decoding` object is merged onto the bundle's tuned
settings by `merge_options`, the rule behind every decoding flag.
"""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations at
# run time, and the request models are local to `make_app` (their limits come from config).
import asyncio
import base64
import functools
import logging
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import fields
from importlib import resources
from typing import Annotated, Any, Literal, Self, get_args, get_type_hints
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    model_validator,
)
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from nlp.chat.attention_plot import packaged_cjk_font, plot_text, render_attention_png
from nlp.decoding import DecodeOptions
from nlp.decoding.options import RERANK_NAMES, STRATEGY_NAMES, option_maximums, option_ranges
from nlp.generation.decode_args import describe_options, merge_options, switch_sets
from nlp.generation.text_generator import Generation
from nlp.headlines.job import article_result
from nlp.headlines.readers import make_article
from nlp.headlines.writers import candidates_record
from nlp.serving.http.budget import CostBudget, chat_cost, decoding_cost
from nlp.serving.http.config import ServeConfig
from nlp.serving.http.conversations import Conversations, UnknownConversation
from nlp.serving.http.gate import AdmissionGate, client_address
from nlp.serving.http.metrics import CONTENT_TYPE, ServeMetrics
from nlp.serving.http.models import ServedModel

log = logging.getLogger(__name__)

STATIC = resources.files("nlp.serving.http") / "static"


def _whole_number(value: object) -> object:
    """3.0 for an integer field is 3: JSON Schema's `integer` is any number without a
    fraction, and JSON itself does not tell 3.0 from 3."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _undocumented_default(schema: dict[str, Any]) -> None:
    """An unset field takes the model's tuned setting, not the `None` pydantic marks unset."""
    schema.pop("default", None)


def decoding_overrides_model() -> type[BaseModel]:
    """A pydantic model with one field per `DecodeOptions` field, each optional (absent: the
    model's setting), same names and types (strategy and rerank as their choices, no null but
    for the seed, whose null is "unseeded"), unknown names refused, every number finite and
    within the option's range, and at most its served maximum (`option_maximums`: a
    stranger's request must not hold the model's one decoding thread): the request's
    `decoding` object. Built from the dataclass, so a new decode option is servable at once."""
    hints = get_type_hints(DecodeOptions)
    choices: dict[str, tuple[str, ...]] = {"strategy": STRATEGY_NAMES, "rerank": RERANK_NAMES}
    ranges, maximums = option_ranges(), option_maximums()
    definitions: dict[str, Any] = {}
    for item in fields(DecodeOptions):
        hint = Literal[choices[item.name]] if item.name in choices else hints[item.name]
        description = item.metadata.get("help") or f"DecodeOptions.{item.name}"
        if isinstance(item.default, bool):  # the help is the flag's: the value it sets
            description = f"{str(switch_sets(item.name)).lower()}: {description}"
        bounds: dict[str, Any] = {}
        if item.name in ranges:
            bounds = {"ge": ranges[item.name][0], "le": maximums[item.name]}
        if hint is float:
            bounds["allow_inf_nan"] = False
        elif int in get_args(hint) or hint is int:
            hint = Annotated[hint, BeforeValidator(_whole_number)]
        definitions[item.name] = (hint, Field(
            None, description=description, json_schema_extra=_undocumented_default, **bounds
        ))
    return create_model(
        "DecodingOverrides",
        __config__=ConfigDict(extra="forbid", strict=True),
        __doc__="Decoding options over the model's tuned ones (GET /v1/models shows them); "
        "only the fields given change.",
        **definitions,
    )


DecodingOverrides = decoding_overrides_model()


class Problem(BaseModel):
    """The body of every refusal but a 422 (whose `detail` lists the fields at fault)."""

    detail: str


# What each refusal means, for the schema's `responses` (the gate answers 401, 413, 429, 503).
_REFUSALS: dict[int, str] = {
    400: "the body cannot be read as JSON",
    401: "missing or wrong bearer token (when the server has one)",
    404: "unknown model, a model of another task, or an unknown conversation",
    405: "the path answers another method",
    413: "the body is larger than the server's limit",
    429: "too many requests from this client; Retry-After says when to try again",
    503: "the model requests in progress are at the server's limit; retry after Retry-After",
}


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` entry of a route that may answer these statuses."""
    return {code: {"model": Problem, "description": _REFUSALS[code]} for code in codes}


def invalid(field: str, message: str) -> RequestValidationError:
    """A 422 of the documented shape (`detail`: a list naming the field) for what only the
    model could find wrong with the body."""
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": "value_error"}])


def request_options(model: ServedModel, overrides: BaseModel | None) -> DecodeOptions:
    """The model's tuned options with the request's overrides; 422 naming the field when the
    result is invalid (a value out of range, or fields contradicting each other)."""
    changes = overrides.model_dump(exclude_unset=True) if overrides is not None else {}
    try:
        return merge_options(model.options, changes)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        first = message.split(" ")[0]
        loc: tuple[str, ...] = ("body", "decoding")
        if first in {item.name for item in fields(DecodeOptions)}:
            loc += (first,)
        raise RequestValidationError(
            [{"loc": loc, "msg": message, "type": "value_error"}]
        ) from exc


def make_app(
    models: Mapping[str, ServedModel],
    config: ServeConfig,
    metrics: ServeMetrics | None = None,
) -> FastAPI:
    """The ASGI app serving `models` (already loaded and warmed up) within `config`'s limits.
    The admission gate (token, rate, in-flight bound, body size, metrics) wraps it."""
    metrics = metrics or ServeMetrics()
    Text = Annotated[str, StringConstraints(max_length=config.max_text_chars)]
    ConversationId = Annotated[
        str, StringConstraints(min_length=1, max_length=config.max_conversation_id_chars)
    ]

    class HeadlinesRequest(BaseModel):
        """Articles in; one result each, in order."""

        model_config = ConfigDict(extra="forbid")
        articles: list[Text] = Field(min_length=1, max_length=config.max_articles)
        decoding: DecodingOverrides | None = None  # type: ignore[valid-type]

    class Headline(BaseModel):
        """A headline and its score (log-probability under the decoding's scoring), with the
        n-best list; or, for an empty or unreadable article, `error`."""

        headline: str | None = None
        score: float | None = None
        n_best: list[dict[str, Any]] | None = None
        error: str | None = None

    class HeadlinesResponse(BaseModel):
        model: str
        decoding: str
        headlines: list[Headline]

    class ChatRequest(BaseModel):
        """One message (or a command: /reset, /beam 3, /sample 0.8, /settings, /why).
        Without `conversation`, a new conversation starts and the answer carries its id."""

        model_config = ConfigDict(extra="forbid")
        conversation: ConversationId | None = None
        message: Text

    class ChatResponse(BaseModel):
        conversation: str
        reply: str
        picture_png_base64: str | None = None  # /why answers with a picture
        # where a chat reply came from: generated | refined | retrieved | fallback ("" for
        # commands), and the training pair ("file:line") of a retrieved or refined one
        provenance: str = ""
        pair: str = ""

    class AttentionRequest(BaseModel):
        """`text`: decode it and draw the output's attention; `conversation` (an id the chat
        endpoint issued): the last reply of that conversation (what /why draws). Exactly one
        of them; `decoding` only with `text`."""

        # The schema says what `_one_input` checks, so that clients (and Schemathesis) know.
        model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
            {"required": ["text"], "not": {"required": ["conversation"]}},
            {"required": ["conversation"],
             "not": {"anyOf": [{"required": ["text"]}, {"required": ["decoding"]}]}},
        ]})
        # Absent is None; an explicit null is refused like any value of the wrong type.
        text: Text = Field(None, json_schema_extra=_undocumented_default)  # type: ignore[assignment]
        conversation: ConversationId = Field(  # type: ignore[assignment]
            None, json_schema_extra=_undocumented_default
        )
        decoding: DecodingOverrides = Field(  # type: ignore[valid-type]
            None, json_schema_extra=_undocumented_default
        )

        @model_validator(mode="after")
        def _one_input(self) -> Self:
            if (self.text is None) == (self.conversation is None):
                raise ValueError("give exactly one of text and conversation")
            if self.conversation is not None and self.decoding is not None:
                raise ValueError("decoding applies to text, not to a conversation's reply")
            return self

    conversations = {
        name: Conversations(
            model.responder.forget,
            max_size=config.max_conversations,
            ttl=config.conversation_ttl_seconds,
            per_owner=config.max_conversations_per_client,
        )
        for name, model in models.items()
    }
    budget = CostBudget(config)

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

    model_refusals = (400, 401, 404, 405, 413, 429, 503)

    def served(name: str, endpoint: str) -> ServedModel:
        model = models.get(name)
        if model is None:
            raise HTTPException(
                404, f"unknown model {name!r}; served: {', '.join(sorted(models))}"
            )
        if endpoint not in model.endpoints:
            raise HTTPException(
                404,
                f"model {name!r} is a {model.task} model: it answers "
                f"{', '.join('/' + e for e in model.endpoints)}, not /{endpoint}",
            )
        return model

    def conversation_lock(name: str, conversation: str) -> asyncio.Lock:
        """The lock of a conversation the server issued for model `name`; 404 for any other
        id (never issued, expired, or another model's), the same answer whichever it is."""
        try:
            return conversations[name].lock(conversation)
        except UnknownConversation:
            raise HTTPException(
                404, "unknown conversation (expired, or not issued by this server for this "
                "model): send a message without `conversation` to start one"
            ) from None

    async def decode(model: ServedModel, text: str, options: DecodeOptions) -> list[Generation]:
        """One text through the model's micro-batcher, with the options' own seed (as the
        batch job decodes it); a generator's ValueError (e.g. MMI re-ranking without a
        companion model) is the request's fault: 422. So is an output without a finite score
        (options that forbid every token before the end, e.g. a minimum length beyond what
        n-gram blocking leaves): the schema promises a number, and clients do arithmetic."""
        try:
            n_best = list(await model.responder.batcher.submit(text, options, options.seed))
        except ValueError as exc:
            raise invalid("decoding", str(exc)) from exc
        if not all(math.isfinite(generation.score) for generation in n_best):
            raise invalid("decoding", "these options leave the model no output with a finite "
                          "score: lower min_length, no_repeat_ngram or the penalties")
        return n_best

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's 422 shape without echoing the input back (it may be 10,000 characters)."""
        errors = [
            {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""),
             "type": error.get("type", "")}
            for error in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/fonts/cjk.otf", include_in_schema=False)
    async def cjk_font() -> FileResponse:
        """The heatmaps' Chinese font (Noto Sans CJK SC from mplfonts) for the page too, so
        Chinese is readable on machines without a CJK font; the stylesheet asks for it only
        when a CJK character is shown."""
        path = packaged_cjk_font()
        if path is None:
            raise HTTPException(404, "no packaged CJK font (pip install mplfonts)")
        return FileResponse(
            str(path), media_type="font/otf", headers={"Cache-Control": "max-age=86400"}
        )

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        """The page's icon, for the clients that ask for it here rather than read the page's
        `<link rel="icon">`."""
        return FileResponse(
            str(STATIC / "favicon.svg"), media_type="image/svg+xml",
            headers={"Cache-Control": "max-age=86400"},
        )

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

    @app.post(
        "/v1/models/{name}/headlines",
        response_model=HeadlinesResponse,
        response_model_exclude_none=True,
        responses=refusals(*model_refusals),
        summary="Headlines for articles, in input order",
    )
    async def headlines(name: str, body: HeadlinesRequest, request: Request) -> dict[str, Any]:
        model = served(name, "headlines")
        options = request_options(model, body.decoding)
        articles = [make_article(i + 1, i, text) for i, text in enumerate(body.articles)]
        good = [article for article in articles if not article.error]
        budget.charge(client_address(request.scope), decoding_cost(options, len(good)))
        lists = await asyncio.gather(*(decode(model, a.text, options) for a in good))
        by_line = {article.line: n_best for article, n_best in zip(good, lists, strict=True)}
        results = [article_result(a, by_line.get(a.line, [])) for a in articles]
        return {
            "model": name,
            "decoding": describe_options(options),
            "headlines": [
                {"error": r.error} if r.error else candidates_record(r.candidates, True)
                for r in results
            ],
        }

    @app.post(
        "/v1/models/{name}/chat",
        response_model=ChatResponse,
        responses=refusals(*model_refusals),
        summary="One message of a conversation in, the reply out",
    )
    async def chat(name: str, body: ChatRequest, request: Request) -> dict[str, Any]:
        model = served(name, "chat")
        client = client_address(request.scope)
        if body.conversation is not None:
            conversation_lock(name, body.conversation)  # an unknown id: 404 before any charge
        budget.charge(client, chat_cost(model.responder, body.conversation))
        conversation = body.conversation or conversations[name].open(client)
        async with conversation_lock(name, conversation):
            reply = await model.responder.respond(conversation, body.message)
        picture = base64.b64encode(reply.photo).decode() if reply.photo else None
        return {"conversation": conversation, "reply": reply.text,
                "picture_png_base64": picture, "provenance": reply.provenance,
                "pair": reply.pair}

    @app.post(
        "/v1/models/{name}/attention",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, **refusals(*model_refusals)},
        summary="Attention heatmap (PNG) of the output for one input",
    )
    async def attention(name: str, body: AttentionRequest, request: Request) -> Response:
        model = served(name, "attention")
        if body.conversation is not None:
            async with conversation_lock(name, body.conversation):
                reply = await model.responder.respond(body.conversation, "/why")
            if reply.photo is None:
                raise HTTPException(404, reply.text)
            return Response(reply.photo, media_type="image/png")
        assert body.text is not None
        options = request_options(model, body.decoding)
        budget.charge(client_address(request.scope), decoding_cost(options))
        n_best = await decode(model, body.text, options)
        if not n_best:
            raise invalid("text", "the text has no tokens the model can read")
        best = await model.responder.with_attention(n_best[0])  # a retrieved reply's: scored
        draw = functools.partial(
            render_attention_png, slots=best.slots, text=plot_text(model.task, best.provenance)
        )
        try:
            png = await asyncio.to_thread(draw, best.source_tokens, best.tokens, best.attention)
        except ValueError as exc:  # nothing to draw (an empty output)
            raise invalid("text", f"cannot draw this one: {exc}") from exc
        return Response(png, media_type="image/png", headers={
            "X-S2S-Output": quote(best.text), "X-S2S-Provenance": best.provenance})

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
