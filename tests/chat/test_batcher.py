"""Micro-batching: grouping by options, size and time bounds, errors, draining, no blocking."""

import asyncio
import threading

import pytest

from nlp.chat.batcher import BatchLimits, MicroBatcher
from nlp.decoding import DecodeOptions
from tests.fakes.fake_generators import CostModel, ScriptedGenerator

GREEDY = DecodeOptions(strategy="greedy")
BEAM = DecodeOptions(strategy="beam", beam_size=3, n_best=3)


async def test_concurrent_requests_share_calls_grouped_by_options() -> None:
    generator = ScriptedGenerator()
    batcher = MicroBatcher(generator.generate, BatchLimits(32, 50))
    texts = [f"message {i}" for i in range(10)]
    results = await asyncio.gather(
        *(batcher.submit(t, GREEDY if i % 2 else BEAM) for i, t in enumerate(texts))
    )
    await batcher.aclose()
    assert [r[0].source_tokens for r in results] == [t.split() for t in texts]
    assert [len(r) for r in results] == [3 if i % 2 == 0 else 1 for i in range(10)]
    assert sorted(len(batch) for batch, _ in generator.calls) == [5, 5]
    for batch, options in generator.calls:
        assert all(int(t.split()[1]) % 2 == (options.strategy == "greedy") for t in batch)


async def test_batches_never_exceed_max_batch() -> None:
    generator = ScriptedGenerator()
    batcher = MicroBatcher(generator.generate, BatchLimits(4, 50))
    await asyncio.gather(*(batcher.submit(f"m{i}", GREEDY) for i in range(10)))
    await batcher.aclose()
    assert [len(batch) for batch, _ in generator.calls] == [4, 4, 2]
    assert batcher.stats.items == 10 and batcher.stats.largest == 4


async def test_a_lone_request_is_sent_without_waiting_for_company() -> None:
    """With room for 32, one request still goes out once `max_wait` has passed. The bound is
    far above max_wait so a loaded machine cannot fail it; what fails it is a batcher that
    holds a lone request until a batch fills (forever)."""
    batcher = MicroBatcher(ScriptedGenerator().generate, BatchLimits(32, 20))
    await asyncio.wait_for(batcher.submit("alone", GREEDY), timeout=30)
    await batcher.aclose()


async def test_requests_arriving_while_a_call_runs_share_the_next_call() -> None:
    """Why an idle worker need not wait for company (the default limits): the request it
    started alone holds the worker, and everything arriving meanwhile goes out together."""
    started, release = threading.Event(), threading.Event()
    calls: list[list[str]] = []

    def run(texts: list[str], options: DecodeOptions, seeds: list[int | None]) -> list[list[str]]:
        calls.append(list(texts))
        started.set()
        release.wait(timeout=30)
        return [[t] for t in texts]

    batcher = MicroBatcher(run)
    first = asyncio.create_task(batcher.submit("first", GREEDY))
    assert await asyncio.to_thread(started.wait, 30)
    rest = [asyncio.create_task(batcher.submit(f"m{i}", GREEDY)) for i in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(first, *rest) == [["first"], *([f"m{i}"] for i in range(5))]
    await batcher.aclose()
    assert calls == [["first"], [f"m{i}" for i in range(5)]]


def test_batch_limits_refuse_an_empty_batch_or_a_negative_wait() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        BatchLimits(0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        BatchLimits(max_wait_ms=-1)
    assert BatchLimits(max_wait_ms=250).max_wait == 0.25


async def test_the_event_loop_keeps_running_while_the_model_works() -> None:
    """The model call waits until the loop has ticked three times: possible only if it runs
    off the loop (on the loop it would wait its whole timeout, and the test fails)."""
    ticked = threading.Event()
    ticks = 0
    seen_while_working: list[bool] = []

    def working(
        texts: list[str], options: DecodeOptions, seeds: list[int | None]
    ) -> list[list[str]]:
        seen_while_working.append(ticked.wait(timeout=30))
        return [[t] for t in texts]

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1
            if ticks >= 3:
                ticked.set()

    batcher = MicroBatcher(working, BatchLimits(8, 0))
    task = asyncio.create_task(ticker())
    await batcher.submit("think hard", GREEDY)
    task.cancel()
    await batcher.aclose()
    assert seen_while_working == [True]


async def test_a_generator_error_reaches_every_caller_of_that_batch_only() -> None:
    calls = 0

    def flaky(
        texts: list[str], options: DecodeOptions, seeds: list[int | None]
    ) -> list[list[object]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("model exploded")
        return [[t] for t in texts]

    batcher = MicroBatcher(flaky, BatchLimits(8, 20))
    first = await asyncio.gather(
        *(batcher.submit(f"a{i}", GREEDY) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in first)
    assert await batcher.submit("b", GREEDY) == ["b"]
    await batcher.aclose()


async def test_close_finishes_what_was_submitted_then_refuses_more() -> None:
    generator = ScriptedGenerator(cost=CostModel(per_call=0.05))
    batcher = MicroBatcher(generator.generate, BatchLimits(2, 10))
    pending = [asyncio.create_task(batcher.submit(f"m{i}", GREEDY)) for i in range(5)]
    await asyncio.sleep(0)
    await batcher.aclose()
    assert all(task.done() and not task.exception() for task in pending)
    with pytest.raises(RuntimeError, match="closed"):
        await batcher.submit("late", GREEDY)
