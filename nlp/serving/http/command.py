"""`s2s serve --model NAME=DIR [--model NAME2=DIR2]`: serve bundles over HTTP.

Endpoints (JSON in and out; OpenAPI at /openapi.json; a web page at /):
  POST /v1/models/NAME/headlines  {"articles": [...], "decoding": {...}} -> headlines in order
  POST /v1/models/NAME/chat       {"conversation": ID, "message": TEXT} -> {"reply": ...}
  POST /v1/models/NAME/attention  {"text": TEXT} or {"conversation": ID} -> PNG heatmap
  GET  /v1/models                 names, tasks, languages, decoding settings, metadata
  GET  /healthz, GET /metrics     liveness; Prometheus metrics
"decoding" overrides single options of the model's tuned settings, named as the decoder's
fields (strategy, beam_size, n_best, max_length, length_penalty, no_repeat_ngram, ...).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from nlp.chat.setup import add_batching_arguments, batch_limits
from nlp.decoding.options import XLA_BY_DEFAULT
from nlp.serving.http.config import DEFAULT_HOST, DEFAULT_PORT, ServeConfig

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve models over HTTP (JSON API, Prometheus metrics, a web page)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ServeConfig()
    parser.add_argument(
        "--model", action="append", required=True, metavar="NAME=DIR",
        help="a bundle (or training run) to serve under NAME, the name in the URLs; repeatable",
    )
    net = parser.add_argument_group("network and access")
    net.add_argument(
        "--host", default=DEFAULT_HOST,
        help="address to listen on (default: %(default)s, this machine only; put a TLS "
        "proxy in front before listening on others)",
    )
    net.add_argument("--port", type=int, default=DEFAULT_PORT, help="(default: %(default)s)")
    net.add_argument(
        "--token-file", type=Path, metavar="FILE",
        help="require 'Authorization: Bearer TOKEN' on /v1/ and /metrics, TOKEN being the "
        "file's first line (never logged); default: no token",
    )
    net.add_argument(
        "--cors-origin", action="append", default=[], metavar="ORIGIN",
        help="let pages from ORIGIN (e.g. https://app.example.org) call the API; repeatable; "
        "default: no CORS headers",
    )
    net.add_argument(
        "--trust-proxy", nargs="+", default=[], metavar="ADDR",
        help="addresses or networks (10.0.0.0/8) of reverse proxies whose X-Forwarded-For "
        "names the client, for the per-client limits; default: none, every client is the "
        "address it connects from",
    )
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--max-body-bytes", type=int, default=defaults.max_body_bytes,
        help="largest request body (413 beyond; default: %(default)s)",
    )
    limits.add_argument(
        "--max-text-chars", type=int, default=defaults.max_text_chars,
        help="longest article, message or text (422 beyond; default: %(default)s)",
    )
    limits.add_argument(
        "--max-articles", type=int, default=defaults.max_articles,
        help="most articles in one headlines request (default: %(default)s)",
    )
    limits.add_argument(
        "--rate-burst", type=int, default=defaults.rate_burst,
        help="requests a client may send at once (429 beyond; default: %(default)s)",
    )
    limits.add_argument(
        "--rate-per-minute", type=float, default=defaults.rate_per_minute,
        help="sustained requests per client and minute (default: %(default)s)",
    )
    limits.add_argument(
        "--max-in-flight", type=int, default=defaults.max_in_flight,
        help="model requests in progress at once; beyond, 503 with Retry-After at once "
        "(default: %(default)s)",
    )
    limits.add_argument(
        "--max-request-cost", type=int, default=defaults.max_request_cost, metavar="STEPS",
        help="most model work in one request, in token steps: the decoder's rows (beam or "
        "samples) x max_length, plus each candidate's tokens per scoring pass of its ranker "
        "and 1 per retrieved reply (413 beyond; default: %(default)s)",
    )
    limits.add_argument(
        "--cost-per-minute", type=float, default=defaults.cost_per_minute, metavar="STEPS",
        help="model work a client may ask for a minute, counted alike, at most "
        "--max-request-cost at once (429 beyond; default: %(default)s)",
    )
    limits.add_argument(
        "--max-conversations", type=int, default=defaults.max_conversations,
        help="chat conversations remembered per model, least recently used dropped "
        "(default: %(default)s)",
    )
    limits.add_argument(
        "--conversation-ttl", type=float, default=defaults.conversation_ttl_seconds,
        metavar="SECONDS",
        help="a conversation idle this long is forgotten (default: %(default)s)",
    )
    limits.add_argument(
        "--max-conversations-per-client", type=int,
        default=defaults.max_conversations_per_client, metavar="N",
        help="conversations one client keeps per model; its new one drops its own least "
        "recently used (default: %(default)s)",
    )
    batching = parser.add_argument_group("micro-batching (as in s2s bot)")
    add_batching_arguments(batching)
    batching.add_argument(
        "--xla", action="store_true", default=XLA_BY_DEFAULT,
        help="compile the decoder with XLA (see s2s headlines --help)",
    )


def read_token(path: Path) -> str:
    """The first line of the token file, stripped; ValueError if there is none."""
    lines = path.read_text("utf-8").splitlines()
    token = lines[0].strip() if lines else ""
    if not token:
        raise ValueError(f"--token-file {path}: the first line is empty")
    return token


def serve_config(args: argparse.Namespace) -> ServeConfig:
    return ServeConfig(
        max_body_bytes=args.max_body_bytes,
        max_text_chars=args.max_text_chars,
        max_articles=args.max_articles,
        rate_burst=args.rate_burst,
        rate_per_minute=args.rate_per_minute,
        max_in_flight=args.max_in_flight,
        max_request_cost=args.max_request_cost,
        cost_per_minute=args.cost_per_minute,
        max_conversations=args.max_conversations,
        max_conversations_per_client=args.max_conversations_per_client,
        conversation_ttl_seconds=args.conversation_ttl,
        batching=batch_limits(args),
        token=read_token(args.token_file) if args.token_file else None,
        cors_origins=tuple(args.cors_origin),
        trusted_proxies=tuple(args.trust_proxy),
    )


def build_app(args: argparse.Namespace) -> Any:
    """Load and warm up every model the options name, then the gated ASGI app (also what
    the tests and the benchmark serve, so they run exactly what the command runs)."""
    from nlp.serving.http.api import gated_app
    from nlp.serving.http.metrics import ServeMetrics
    from nlp.serving.http.models import check_unique, load_served_model, parse_model_spec

    specs = [parse_model_spec(text) for text in args.model]
    check_unique(specs)
    config = serve_config(args)
    metrics = ServeMetrics()
    models = {}
    for spec in specs:
        model = load_served_model(
            spec, config, observe_batch=metrics.observe_batch(spec.name), jit_compile=args.xla
        )
        model.warm_up()
        if model.clock is not None:
            metrics.watch_stages(spec.name, model.clock)
        log.info("serving %s (%s model) from %s", spec.name, model.task, model.directory)
        models[spec.name] = model
    return gated_app(models, config, metrics)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    try:
        app = build_app(args)
    except (OSError, ValueError) as exc:
        print(f"s2s serve: {exc}", file=sys.stderr)
        return 1
    print(f"s2s serve: http://{args.host}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
    # proxy_headers=False: uvicorn would otherwise trust X-Forwarded-For from 127.0.0.1;
    # the app applies --trust-proxy itself (`gated_app`)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", lifespan="on",
                proxy_headers=False)
    return 0
