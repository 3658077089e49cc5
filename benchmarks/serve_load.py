#!/usr/bin/env python3
"""Load benchmark for `s2s serve`: throughput and latency against offered load, beside the
Telegram bot's and the batch headline job's throughput on the same models in the same run.

    .venv/bin/python -m benchmarks.serve_load --chat-model RUN/model --headline-model RUN2/model
        [--rates 2,8,32,128] [--duration 20] [--headline-batch 8] [--max-in-flight 32]
        [--peak-size 2048]

The server is the real command (`python -m s2s.cli serve`, a process of its own, on a free
127.0.0.1 port, with the rate limit lifted so it measures the model, not the limiter). For
each offered rate R (requests per second, open loop: a request every 1/R s whatever the
answers, as independent clients send them), for `--duration` seconds:
  - chat: one message per request, 64 conversations taking turns (the dialogue sample's
    posts), so context and micro-batching work as they do for people;
  - headlines: `--headline-batch` articles per request (the headline sample's articles).
Reported per level: requests answered per second, items per second (articles for headlines),
p50/p95 latency of the answered requests, and how many were refused (503 when the in-flight
bound is full, any other status as errors).

Then, with the server gone, the bot: the chat model loaded in this process and served as
`s2s bot --model` serves it (the bundle's settings, the same micro-batching bounds as the
server's defaults), driven through `benchmarks.bot_load`'s fake Bot API over HTTP with
python-telegram-bot (the fake server and the driver in another process, `bot_load`'s
`apart`: the bot's event loop runs only the bot, as against the real Bot API), offered the
same messages at the same rates for the same time (one message every 1/R s over the same 64
conversations). Its latency runs from a message's arrival at the fake Bot API to the reply's
delivery there, and the JSON says whether every message got exactly one reply, in order per
chat (`exactly_once_in_order`). The bot's outgoing
flood limits are off, as in `bot_load`, so Telegram's ~30 messages/s cap is not what is
measured.

Then the batch job (`generate_headlines`, this process, the bundle's settings, batch 64)
decodes the same articles for its articles/s. The server, the bot and the job share the
machine in turn, never at once. Before the server starts and after the batch job ends a
`--peak-size`^3 float32 TensorFlow matmul is timed in a fresh process (`matmul_peak`, as
`benchmarks.train_throughput` does), so the figures come with the machine's speed on the day;
no decoding FLOPs are counted, so there is no peak share, only ratios measured in the same
run: the bot's messages/s and latency over the server's chat at each offered load, and the
server's headline articles/s at each load over the batch job's. Writes
benchmarks/results/serve_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import (
    RESULTS_DIR,
    format_table,
    free_port,
    percentile,
    run_isolated,
    write_json,
)
from benchmarks.train_throughput import matmul_peak

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads (batch job)
ROOT = Path(__file__).resolve().parent.parent
RESULTS = RESULTS_DIR / "serve_load.json"
CONVERSATIONS = 64
BOT = "bot (fake Telegram)"
BOT_WEBHOOK = "bot, webhook mode (fake Telegram)"
BATCH_JOB = "batch job (s2s headlines)"
COLUMNS = [
    ("endpoint", "endpoint"),
    ("offered_rps", "offered req/s"),
    ("answered_rps", "answered req/s"),
    ("items_per_second", "items/s"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("p99_ms", "p99 ms"),
    ("stage_ms", "ms/request by stage"),
    ("answered", "answered"),
    ("refused_503", "503"),
    ("errors", "errors"),
]


def sample_texts(name: str, field: str) -> list[str]:
    """The `field` of every record of corpora/NAME (the shipped samples)."""
    with (ROOT / "corpora" / name).open(encoding="utf-8") as handle:
        return [json.loads(line)[field] for line in handle if line.strip()]


def chat_posts(sample: str) -> list[str]:
    """The messages both the server and the bot are offered, in order (message n goes to
    conversation n % CONVERSATIONS)."""
    return sample_texts(sample, "source")


def stage_totals(text: str, model: str) -> dict[str, dict[str, float]]:
    """One model's stage counters from the server's /metrics text: {"seconds": {stage:
    total}, "calls": {stage: total}}, read with prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, dict[str, float]] = {"seconds": {}, "calls": {}}
    for family in text_string_to_metric_families(text):
        kind = family.name.removeprefix("s2s_generation_stage_")
        if kind not in totals:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("model") == model:
                totals[kind][sample.labels["stage"]] = sample.value
    return totals


def stage_split(before: dict[str, float], after: dict[str, float], answered: int) -> str:
    """Milliseconds per answered request spent in each stage over one load level (the
    model's worker thread's time, so batched calls share it between their requests)."""
    spent = {stage: after[stage] - before.get(stage, 0.0) for stage in after}
    return " ".join(f"{stage} {1000 * spent[stage] / max(answered, 1):.1f}"
                    for stage in sorted(spent, key=lambda s: -spent[s]) if spent[stage] > 0)


def start_server(
    models: list[str], max_in_flight: int, port: int, log: Path
) -> subprocess.Popen[str]:
    """`s2s serve` in its own process, its log (one access line a request) in `log`;
    returns once /healthz answers."""
    command = [sys.executable, "-m", "s2s.cli", "serve", "--port", str(port),
               "--max-in-flight", str(max_in_flight), "--rate-burst", "1000000",
               "--rate-per-minute", "1e9", "--cost-per-minute", "1e12"]  # one client: no limit
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
        "p99_ms": round(1000 * percentile(latencies, 99), 1) if latencies else None,
    }


async def open_conversation(client: httpx.AsyncClient, endpoint: str) -> str:
    """A conversation id issued by the server (it answers only to ids it issued), opened
    with a command that needs no decoding, so the figures count only the posts."""
    answer = await client.post(endpoint, json={"message": "/settings"})
    answer.raise_for_status()
    return str(answer.json()["conversation"])


async def measure_server(args: argparse.Namespace, port: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        plans = []
        if args.chat_model:
            ids = [await open_conversation(client, "/v1/models/chat/chat")
                   for _ in range(CONVERSATIONS)]
            bodies = [{"conversation": ids[n % CONVERSATIONS], "message": post}
                      for n, post in enumerate(chat_posts(args.chat_sample))]
            plans.append(("chat", "/v1/models/chat/chat", bodies, 1))
        if args.headline_model:
            articles = sample_texts(args.headline_sample, "source")
            batches = [list(islice(cycle(articles), start, start + args.headline_batch))
                       for start in range(0, len(articles), args.headline_batch)]
            plans.append(("headlines", "/v1/models/news/headlines",
                          [{"articles": batch} for batch in batches], args.headline_batch))
        for name, endpoint, bodies, items in plans:
            model = endpoint.split("/")[3]
            await client.post(endpoint, json=bodies[0])  # first-call costs out of the figures
            for rate in args.rates:
                before = stage_totals((await client.get("/metrics")).text, model)
                row = await offered_load(client, endpoint, bodies, rate, args.duration, items)
                after = stage_totals((await client.get("/metrics")).text, model)
                for kind, digits in (("seconds", 3), ("calls", 0)):
                    row[f"stage_{kind}"] = {
                        stage: round(value - before[kind].get(stage, 0.0), digits)
                        for stage, value in after[kind].items()
                    }
                row["stage_ms"] = stage_split(before["seconds"], after["seconds"],
                                              row["answered"])
                rows.append({"endpoint": name, **row})
                print(format_table(rows[-1:], COLUMNS), file=sys.stderr)
    return rows


def measure_bot(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The bot on the chat model at each offered rate, as `measure_server` offers the server
    chat: `benchmarks.bot_load`'s responder (warmed up as `s2s bot`'s) and driver (a fake Bot
    API over HTTP, python-telegram-bot and the real bot code), the same posts and
    conversations; long polling (`s2s bot`'s default), then webhook mode (the Bot API posts
    each update to the bot)."""
    from benchmarks.bot_load import make_responder, run_once
    from nlp.chat.setup import add_responder_arguments
    from nlp.generation.loading import load_model  # TensorFlow loads here

    # The bot's own micro-batching defaults (the server's are the same): what `s2s bot` runs.
    parser = argparse.ArgumentParser()
    add_responder_arguments(parser, state_name="serve_load")
    defaults = parser.parse_args(["--model", str(args.chat_model)])
    model = load_model(args.chat_model)
    posts = chat_posts(args.chat_sample)
    rows: list[dict[str, Any]] = []
    for endpoint, rate in [(e, r) for e in (BOT, BOT_WEBHOOK) for r in args.rates]:
        responder = make_responder(  # one a run: the bot closes it when it stops
            args.chat_model, model, [], defaults.max_batch, defaults.max_wait_ms
        )
        total = max(1, round(rate * args.duration))
        result = asyncio.run(run_once(
            responder, endpoint, defaults.max_batch, defaults.max_wait_ms,
            min(CONVERSATIONS, total), total, texts=posts, rate=rate, apart=True,
            webhook=endpoint == BOT_WEBHOOK,
        ))
        rows.append({
            "endpoint": endpoint,
            "offered_rps": rate,
            "seconds": result.seconds,
            "sent": result.messages,
            "answered": result.messages,
            "refused_503": "",
            "errors": "",
            "exactly_once_in_order": result.exactly_once_in_order,
            "answered_rps": result.messages_per_second,
            "items_per_second": result.messages_per_second,
            "p50_ms": result.latency_ms["p50"],
            "p95_ms": result.latency_ms["p95"],
            "p99_ms": result.latency_ms["p99"],
            "model_calls": result.model_calls,
            "mean_batch": result.mean_batch,
            "stage_ms": f"in the responder p50 {result.respond_ms['p50']:.1f}, "
                        f"p95 {result.respond_ms['p95']:.1f}",
        })
        print(format_table(rows[-1:], COLUMNS), file=sys.stderr)
    return rows


def ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Figures of one run set beside each other: the bot over the server's chat at each
    offered rate, and the server's headline articles/s at each rate over the batch job's."""
    by = {(row["endpoint"], row["offered_rps"]): row for row in rows}

    def ratio(a: Any, b: Any) -> float | None:
        return round(a / b, 2) if isinstance(a, int | float) and b else None

    result: dict[str, Any] = {}
    for (endpoint, rate), bot in by.items():
        server = by.get(("chat", rate))
        if endpoint in (BOT, BOT_WEBHOOK) and server:
            mode = "bot" if endpoint == BOT else "bot in webhook mode"
            result[f"{mode} / server chat at {rate:g} req/s"] = {
                key: ratio(bot[key], server[key])
                for key in ("answered_rps", "p50_ms", "p95_ms", "p99_ms")
            }
    job = by.get((BATCH_JOB, ""))
    for (endpoint, rate), row in by.items():
        if endpoint == "headlines" and job:
            result[f"server headlines at {rate:g} req/s / batch job, articles/s"] = ratio(
                row["items_per_second"], job["items_per_second"]
            )
    return result


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
        "endpoint": BATCH_JOB,
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
        "--chat-sample", default="dialogue-en.jsonl",
        help="messages: a file in corpora/ (default: %(default)s)",
    )
    parser.add_argument(
        "--headline-sample", default="headlines-zh.jsonl",
        help="articles: a file in corpora/ (default: %(default)s)",
    )
    parser.add_argument(
        "--rates", type=lambda text: [float(r) for r in text.split(",")],
        default=[2.0, 8.0, 32.0, 128.0],
        help="offered loads, requests per second (default: 2,8,32,128; the last saturates "
        "headlines on 2 cores)",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load level")
    parser.add_argument("--headline-batch", type=int, default=8, help="articles per request")
    parser.add_argument("--max-in-flight", type=int, default=32)
    parser.add_argument(
        "--peak-size", type=int, default=2048,
        help="side of the float32 matmul timed before and after (default: %(default)s)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not (args.chat_model or args.headline_model):
        parser.error("give --chat-model and/or --headline-model")

    models = [f"chat={args.chat_model}"] * bool(args.chat_model)
    models += [f"news={args.headline_model}"] * bool(args.headline_model)
    peaks = [run_isolated(matmul_peak, args.peak_size, 10, "float32")]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="serve-load-log-") as tmp:
        server = start_server(models, args.max_in_flight, port, Path(tmp) / "serve.log")
        try:
            rows = asyncio.run(measure_server(args, port))
        finally:
            server.terminate()
            server.wait(60)
    if args.chat_model:
        rows += measure_bot(args)
    if args.headline_model:
        rows.append(batch_job(args))
    peaks.append(run_isolated(matmul_peak, args.peak_size, 10, "float32"))
    compared = ratios(rows)
    result = {
        "benchmark": "serve_load",
        "chat_model": str(args.chat_model or ""),
        "headline_model": str(args.headline_model or ""),
        "headline_batch": args.headline_batch,
        "duration_s": args.duration,
        "max_in_flight": args.max_in_flight,
        "cpu_count": os.cpu_count(),
        "matmul_peak_gflops": {"size": args.peak_size, "dtype": "float32",
                               "before": round(peaks[0], 1), "after": round(peaks[1], 1)},
        "rows": rows,
        "ratios": compared,
    }
    write_json(args.output, result)
    print(format_table(rows, COLUMNS))
    print(f"matmul peak (float32, {args.peak_size}^3): {peaks[0]:.1f} GFLOP/s before, "
          f"{peaks[1]:.1f} after")
    for name, value in compared.items():
        print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
