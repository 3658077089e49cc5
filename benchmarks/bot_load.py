"""Load benchmark for the Telegram bot: 200 chats x 5 messages through a fake Bot API.

Run: .venv/bin/python benchmarks/bot_load.py [--model DIR] [--chats 200] [--messages 5]
[--telegram-apart] [--webhook]

Everything is real except Telegram: python-telegram-bot long-polls the fake Bot API server
from tests/fakes/fake_telegram.py over HTTP on 127.0.0.1 (or, with `--webhook`, the bot runs in
webhook mode and the fake posts each update to it), in the same process and event loop (so
the figures include the fake server's own work), or with `--telegram-apart` in another process
(as the real Bot API is: the figures are the bot's own). All messages are pushed at once (a burst),
then the bot answers them; we check that every message got exactly one reply, in order per
chat, and report messages per second and reply latency (push to delivery) percentiles, once
with micro-batching and once without (max_batch=1, max_wait=0). No faults are injected, so
no send is retried: the bot's guarantee is at least once, and against the real Bot API a
send that timed out after succeeding shows up twice (see bot/delivery.py). The bot's
outgoing flood limits (Telegram's ~30 messages/s) are off here, as in the tests, so the
figures measure the bot itself, not Telegram's cap.

Without --model, a fake generator stands in for the model with a cost model of PER_CALL_MS
per call plus PER_ITEM_MS per message in the batch (default 5 + 0.5 ms, roughly a small
greedy model on 2 CPU cores, see STACK-NOTES), slept on the worker thread. With --model, the
real bundle is loaded once and the responder is built exactly as `s2s bot --model DIR` builds
it (`nlp.chat.setup.build_responder`): it decodes with the bundle's tuned settings (its
decoding.json, with its MMI companions), which is what people get. The same load then runs
with `--beam 5` (plain beam search), so the tuned default's latency is stated as a ratio to
plain beam's measured in the same run. Before timing, each responder warms up as `s2s bot`'s
does (`ChatResponder.warm_up`: one decode of every batch size that can start a new compiled
shape). Results go to benchmarks/results/bot_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from benchmarks.common import free_port, percentile  # noqa: E402
from bot.config import WebhookConfig  # noqa: E402
from nlp.chat.batcher import BatchLimits  # noqa: E402
from nlp.chat.responder import ChatResponder  # noqa: E402
from nlp.chat.settings import SettingsStore  # noqa: E402
from nlp.chat.setup import add_responder_arguments, build_responder  # noqa: E402
from nlp.generation.decode_args import describe_options  # noqa: E402
from nlp.generation.loading import LoadedModel, load_model  # noqa: E402
from tests.fakes.fake_generators import CostModel, ScriptedGenerator, fake_model  # noqa: E402
from tests.fakes.fake_telegram import (  # noqa: E402
    TEST_TOKEN,
    FakeTelegram,
    bot_on_fake_telegram,
    bot_polling,
)

# (mode, responder flags as `s2s bot` takes them, micro-batching on): with a real model.
MODEL_RUNS = (
    ("bundle settings", [], True),
    ("plain beam (--beam 5)", ["--beam", "5"], True),
    ("bundle settings, no batching", [], False),
)


@dataclass
class RunResult:
    mode: str
    max_batch: int
    max_wait_ms: float
    messages: int
    seconds: float
    messages_per_second: float
    latency_ms: dict[str, float]
    model_calls: int
    mean_batch: float
    largest_batch: int
    exactly_once_in_order: bool
    # time inside `ChatResponder.respond` (the bot's process): the rest of `latency_ms` is
    # Telegram's side, the HTTP round trips and python-telegram-bot
    respond_ms: dict[str, float]
    decoding: str = ""  # the options each message was decoded with (the responder's default)


def make_responder(
    bundle: Path | None, model: LoadedModel, flags: list[str], max_batch: int, max_wait_ms: float
) -> ChatResponder:
    """With a bundle: the responder `s2s bot --model BUNDLE FLAGS` builds (settings kept in
    memory, warmed up: every batch size the micro-batcher can start a compiled shape with is
    decoded before it is returned); without: a plain responder around the fake generator."""
    if bundle is None:
        return ChatResponder(
            model, store=SettingsStore(":memory:"), batching=BatchLimits(max_batch, max_wait_ms)
        )
    parser = argparse.ArgumentParser()
    add_responder_arguments(parser, state_name="bot_load")
    args = parser.parse_args(
        ["--model", str(bundle), "--state", ":memory:", "--max-batch", str(max_batch),
         "--max-wait-ms", str(max_wait_ms), *flags]
    )
    return build_responder(args, lambda: model)


@dataclass
class Offered:
    """One offered load as the fake Bot API saw it: each reply's latency (from the message's
    push to the reply's delivery, both on the server's clock), the window, and whether every
    message got exactly one reply, in order per chat."""

    latencies_ms: list[float]
    seconds: float
    exactly_once_in_order: bool


async def offer(
    server: FakeTelegram, chats: int, total: int, texts: Sequence[str], rate: float | None
) -> Offered:
    """Push `total` messages to `chats` chats, one chat after another, and wait for every
    reply. Without `rate`, all at once (a burst); with it, open loop: message n at n/rate s
    whatever the replies, as independent users write (how `benchmarks.serve_load` offers the
    HTTP server the same load). Texts are `texts` in turn, or a numbered greeting per chat."""
    pushed: dict[tuple[int, int], float] = {}
    order: dict[int, list[int]] = {}
    start = time.monotonic()
    for n in range(total):
        chat, i = n % chats + 1, n // chats
        if rate is not None and (delay := start + n / rate - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        text = texts[n % len(texts)] if texts else f"chat {chat} says hello number {i}"
        message_id = server.push_message(chat, text)
        pushed[(chat, message_id)] = time.monotonic()
        order.setdefault(chat, []).append(message_id)
    await server.wait_for(lambda: len(server.sent) >= total, timeout=600)
    # the window the load was offered in, or longer if the replies took longer to come
    elapsed = max(max(s.time for s in server.sent) - start, total / rate if rate else 0.0)
    in_order = all([s.reply_to for s in server.replies(chat)] == ids for chat, ids in order.items())
    return Offered(
        latencies_ms=[(s.time - pushed[(s.chat_id, s.reply_to or 0)]) * 1000 for s in server.sent],
        seconds=elapsed,
        exactly_once_in_order=in_order and len(server.sent) == total,
    )


def _offer_apart(
    connection: Connection, chats: int, total: int, texts: list[str], rate: float | None
) -> None:
    """The other process of an `apart` run: a fake Bot API and the load driver. It sends its
    address, offers the load once the bot says it listens (polls, or has set its webhook),
    sends the `Offered` (as a dict), and keeps serving until the bot has stopped (its last
    getUpdates confirms the offset)."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        async with FakeTelegram(TEST_TOKEN) as server:
            connection.send(server.base_url)
            await loop.run_in_executor(None, connection.recv)  # the bot listens
            connection.send(asdict(await offer(server, chats, total, texts, rate)))
            await loop.run_in_executor(None, connection.recv)  # the bot has stopped

    asyncio.run(serve())


async def offered_apart(
    responder: ChatResponder, chats: int, total: int, texts: Sequence[str], rate: float | None,
    **changes: Any,
) -> Offered:
    """`offer` with the fake Bot API and the driver in another process: the bot's event loop
    then runs only the bot, as against the real Bot API, so its latency is its own."""
    context = multiprocessing.get_context("spawn")  # no TensorFlow state forked
    here, there = context.Pipe()
    process = context.Process(
        target=_offer_apart, args=(there, chats, total, list(texts), rate), daemon=True
    )
    process.start()
    there.close()  # the child's end: if the child dies, recv() here ends in EOFError
    loop = asyncio.get_running_loop()
    try:
        url = await loop.run_in_executor(None, here.recv)
        async with bot_polling(responder, url, **changes):
            here.send("poll")
            offered = Offered(**await loop.run_in_executor(None, here.recv))
        here.send("stopped")
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    return offered


async def run_once(
    responder: ChatResponder, mode: str, max_batch: int, max_wait_ms: float, chats: int,
    total: int, *, texts: Sequence[str] = (), rate: float | None = None, apart: bool = False,
    webhook: bool = False,
) -> RunResult:
    """`offer` the load to the bot; `apart`: the fake Bot API in another process
    (`offered_apart`), else in this event loop, whose work then adds to the bot's latency.
    `webhook`: the bot in webhook mode (the fake posts each update to it) instead of long
    polling."""
    changes: dict[str, Any] = {"rate_burst": -(-total // chats) + 1}  # every message let in
    respond_seconds: list[float] = []
    respond = responder.respond

    async def timed_respond(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await respond(*args, **kwargs)
        finally:
            respond_seconds.append(time.perf_counter() - start)

    responder.respond = timed_respond  # type: ignore[method-assign]
    if webhook:
        port = free_port()
        changes["webhook"] = WebhookConfig(f"http://127.0.0.1:{port}/tg/updates", port=port)
    if apart:
        offered = await offered_apart(responder, chats, total, texts, rate, **changes)
    else:
        async with bot_on_fake_telegram(responder, **changes) as server:
            offered = await offer(server, chats, total, texts, rate)
    latencies = offered.latencies_ms
    stats = responder.batcher.stats
    return RunResult(
        mode=mode,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        messages=total,
        seconds=round(offered.seconds, 3),
        messages_per_second=round(total / offered.seconds, 1),
        latency_ms={f"p{q}": round(percentile(latencies, q), 1) for q in (50, 95, 99)}
        | {"mean": round(statistics.fmean(latencies), 1)},
        model_calls=stats.calls,
        mean_batch=round(stats.mean_batch, 2),
        largest_batch=stats.largest,
        exactly_once_in_order=offered.exactly_once_in_order,
        respond_ms={f"p{q}": round(percentile(respond_seconds, q) * 1000, 1) for q in (50, 95)},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a trained chat model bundle")
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5, help="messages per chat")
    parser.add_argument("--max-batch", type=int, default=BatchLimits.max_batch)
    parser.add_argument("--max-wait-ms", type=float, default=BatchLimits.max_wait_ms)
    parser.add_argument("--per-call-ms", type=float, default=5.0, help="fake generator cost")
    parser.add_argument("--per-item-ms", type=float, default=0.5, help="fake generator cost")
    parser.add_argument("--telegram-apart", action="store_true",
                        help="the fake Bot API and the driver in another process")
    parser.add_argument("--webhook", action="store_true",
                        help="the bot in webhook mode (updates posted to it), not long polling")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bot_load.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    if args.model is not None:
        model = load_model(args.model)
        generator = f"real model bundle {args.model}"
        runs = MODEL_RUNS
    else:
        cost = CostModel(args.per_call_ms / 1000, args.per_item_ms / 1000)
        model = fake_model(ScriptedGenerator(cost=cost))
        generator = (
            f"FAKE generator (no model): {args.per_call_ms:g} ms per call + "
            f"{args.per_item_ms:g} ms per message, slept in the worker thread"
        )
        runs = (("micro-batching", [], True), ("no batching", [], False))
    print(f"generator: {generator}")
    print(f"load: {args.chats} chats x {args.messages} messages, pushed at once")
    results = []
    for mode, flags, batching in runs:
        max_batch, max_wait = (args.max_batch, args.max_wait_ms) if batching else (1, 0.0)
        start = time.monotonic()
        responder = make_responder(args.model, model, flags, max_batch, max_wait)
        seconds = time.monotonic() - start  # the settings and the warm-up: start-up cost
        result = asyncio.run(
            run_once(responder, mode, max_batch, max_wait, args.chats, args.chats * args.messages,
                     apart=args.telegram_apart, webhook=args.webhook)
        )
        result.decoding = describe_options(
            responder.store.defaults.decode_options(responder.base_options)
        )
        results.append(result)
        lat = result.latency_ms
        print(
            f"{mode:>28}: {result.messages_per_second:7.1f} msg/s | latency p50 {lat['p50']:.0f}"
            f" ms, p95 {lat['p95']:.0f} ms, p99 {lat['p99']:.0f} ms | {result.model_calls} model"
            f" calls, mean batch {result.mean_batch} | one reply each, in order:"
            f" {result.exactly_once_in_order} | start-up with warm-up {seconds:.1f} s"
            f" | {result.decoding}"
        )
    ratios = {}
    if args.model is not None:
        tuned, beam = results[0].latency_ms, results[1].latency_ms
        ratios = {q: round(tuned[q] / beam[q], 2) for q in ("p50", "p95", "mean")}
        print(f"bundle settings / plain beam latency (micro-batching on): {ratios}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "generator": generator,
        "chats": args.chats,
        "messages_per_chat": args.messages,
        "telegram_apart": args.telegram_apart,
        "webhook": args.webhook,
        "runs": [asdict(r) for r in results],
        "bundle_settings_over_plain_beam_latency": ratios,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if all(r.exactly_once_in_order for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
