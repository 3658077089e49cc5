#!/usr/bin/env python3
"""Load benchmark for `s2s serve`: throughput and latency against offered load, beside the
batch headline job's throughput on the same model in the same run.

    .venv/bin/python -m benchmarks.serve_load --chat-model RUN/model --headline-model RUN2/model
        [--rates 2,8,32] [--duration 20] [--headline-batch 8] [--max-in-flight 32]

The server is the real command (`python -m s2s.cli serve`, a process of its own, on a free
127.0.0.1 port, with the rate limit lifted so it measures the model, not the limiter). For
each offered rate R (requests per second, open loop: a request every 1/R s whatever the
answers, as independent clients send them), for `--duration` seconds:
  - chat: one message per request, 64 conversations taking turns (the dialogue sample's
    posts), so context and micro-batching work as they do for people;
  - headlines: `--headline-batch` articles per request (the headline sample's articles).
Reported per level: requests answered per second, items per second (articles for headlines),
p50/p95 latency of the answered requests, and how many were refused (503 when the in-flight
bound is full, any other status as errors). Then the batch job (`generate_headlines`, this
process, the bundle's settings, batch 64) decodes the same articles for its articles/s.
The two share the machine in turn, never at once. Writes benchmarks/results/serve_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import RESULTS_DIR, format_table, percentile, write_json

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads (batch job)
ROOT = Path(__file__).resolve().parent.parent
RESULTS = RESULTS_DIR / "serve_load.json"
CONVERSATIONS = 64
COLUMNS = [
    ("endpoint", "endpoint"),
    ("offered_rps", "offered req/s"),
    ("answered_rps", "answered req/s"),
    ("items_per_second", "items/s"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("answered", "answered"),
    ("refused_503", "503"),
    ("errors", "errors"),
]


def sample_texts(name: str, field: str) -> list[str]:
    """The `field` of every record of corpora/NAME (the shipped samples)."""
    with (ROOT / "corpora" / name).open(encoding="utf-8") as handle:
        return [json.loads(line)[field] for line in handle if line.strip()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(
    models: list[str], max_in_flight: int, port: int, log: Path
) -> subprocess.Popen[str]:
    """`s2s serve` in its own process, its log (one access line a request) in `log`;
    returns once /healthz answers."""
    command = [sys.executable, "-m", "s2s.cli", "serve", "--port", str(port),
               "--max-in-flight", str(max_in_flight), "--rate-burst", "1000000",
               "--rate-per-minute", "1e9"]
    for model in models:
        command += ["--model", model]
    with log.open("w") as sink:  # a file, not a pipe: nobody reads it while the load runs
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"s2s serve exited:\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("s2s serve did not come up in 300 s")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)


async def offered_load(
    client: httpx.AsyncClient, endpoint: str, bodies: list[dict[str, Any]], rate: float,
    duration: float, items: int,
) -> dict[str, Any]:
    """Send `rate` requests a second for `duration` seconds (open loop) and summarise."""
    latencies: list[float] = []
    statuses: list[int] = []

    async def one(body: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            answer = await client.post(endpoint, json=body)
            status = answer.status_code
        except httpx.HTTPError:
            status = 0
        statuses.append(status)
        if status == 200:
            latencies.append(time.perf_counter() - started)

    tasks = []
    started = time.perf_counter()
    for n, body in enumerate(islice(cycle(bodies), max(1, round(rate * duration)))):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(body)))
    await asyncio.gather(*tasks)
    # the window the load was offered in, or longer if the answers took longer to come
    elapsed = max(time.perf_counter() - started, duration)
    answered = statuses.count(200)
    return {
        "offered_rps": rate,
        "seconds": round(elapsed, 2),
        "sent": len(statuses),
        "answered": answered,
        "refused_503": statuses.count(503),
        "errors": len(statuses) - answered - statuses.count(503),
        "answered_rps": round(answered / elapsed, 2),
        "items_per_second": round(answered * items / elapsed, 2),
        "p50_ms": round(1000 * percentile(latencies, 50), 1) if latencies else None,
        "p95_ms": round(1000 * percentile(latencies, 95), 1) if latencies else None,
    }


async def measure_server(args: argparse.Namespace, port: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        plans = []
        if args.chat_model:
            posts = sample_texts("dialogue-en.jsonl", "source")
            bodies = [{"conversation": f"bench-{n % CONVERSATIONS}", "message": post}
                      for n, post in enumerate(posts)]
            plans.append(("chat", "/v1/models/chat/chat", bodies, 1))
        if args.headline_model:
            articles = sample_texts(args.headline_sample, "source")
            batches = [list(islice(cycle(articles), start, start + args.headline_batch))
                       for start in range(0, len(articles), args.headline_batch)]
            plans.append(("headlines", "/v1/models/news/headlines",
                          [{"articles": batch} for batch in batches], args.headline_batch))
        for name, endpoint, bodies, items in plans:
            await client.post(endpoint, json=bodies[0])  # first-call costs out of the figures
            for rate in args.rates:
                row = await offered_load(client, endpoint, bodies, rate, args.duration, items)
                rows.append({"endpoint": name, **row})
                print(format_table(rows[-1:], COLUMNS), file=sys.stderr)
    return rows


def batch_job(args: argparse.Namespace) -> dict[str, Any]:
    """Articles per second of `s2s headlines`' job on the same model and articles."""
    from nlp.generation.generator import (
        Generator,  # TensorFlow loads here, after the server is gone
    )
    from nlp.headlines import HeadlineJobOptions, generate_headlines

    generator = Generator.from_bundle(args.headline_model)
    decoding = generator.bundle.decoding
    options = HeadlineJobOptions(decode=decoding.options) if decoding else HeadlineJobOptions()
    articles = sample_texts(args.headline_sample, "source")
    count = max(len(articles), round(args.duration * 4))  # a few batches at least
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        source = Path(tmp) / "articles.txt"
        lines = (a.replace("\n", " ") + "\n" for a in cycle(articles))
        source.write_text("".join(islice(lines, count)), "utf-8")
        warm = Path(tmp) / "warm.txt"
        warm.write_text("".join(islice(source.open(encoding="utf-8"), options.batch_size)))
        generate_headlines(generator, warm, Path(tmp) / "w.jsonl", options)
        summary = generate_headlines(generator, source, Path(tmp) / "out.jsonl", options)
    return {
        "endpoint": "batch job (s2s headlines)",
        "offered_rps": "",
        "items_per_second": round(summary.articles_per_second, 2),
        "answered": summary.written,
        "seconds": round(summary.seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chat-model", type=Path, help="chat bundle (served as 'chat')")
    parser.add_argument("--headline-model", type=Path, help="headline bundle ('news')")
    parser.add_argument(
        "--headline-sample", default="headlines-zh.jsonl",
        help="articles: a file in corpora/ (default: %(default)s)",
    )
    parser.add_argument(
        "--rates", type=lambda text: [float(r) for r in text.split(",")], default=[2.0, 8.0, 32.0],
        help="offered loads, requests per second (default: 2,8,32)",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load level")
    parser.add_argument("--headline-batch", type=int, default=8, help="articles per request")
    parser.add_argument("--max-in-flight", type=int, default=32)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not (args.chat_model or args.headline_model):
        parser.error("give --chat-model and/or --headline-model")

    models = [f"chat={args.chat_model}"] * bool(args.chat_model)
    models += [f"news={args.headline_model}"] * bool(args.headline_model)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="serve-load-log-") as tmp:
        server = start_server(models, args.max_in_flight, port, Path(tmp) / "serve.log")
        try:
            rows = asyncio.run(measure_server(args, port))
        finally:
            server.terminate()
            server.wait(60)
    if args.headline_model:
        rows.append(batch_job(args))
    result = {
        "benchmark": "serve_load",
        "chat_model": str(args.chat_model or ""),
        "headline_model": str(args.headline_model or ""),
        "headline_batch": args.headline_batch,
        "duration_s": args.duration,
        "max_in_flight": args.max_in_flight,
        "cpu_count": os.cpu_count(),
        "rows": rows,
    }
    write_json(args.output, result)
    print(format_table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
