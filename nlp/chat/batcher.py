"""Micro-batching: many chats' messages, one model call, off the event loop.

A model call costs a fixed overhead plus a little per sentence (see STACK-NOTES: batch 64
greedy is ~15x cheaper per sentence than batch 1). Requests that want the same decoding
options are decoded together in one worker thread, so the event loop keeps serving Telegram
while the model thinks. While a batch runs, new requests queue up and form the next batch:
under load batches grow on their own. That is why an idle worker starts at once by default
(`BatchLimits.max_wait_ms` 0, as Triton's dynamic batcher with no queue delay): waiting for
company only pays when calls are cheap next to the gaps between requests, and then the
worker is seldom busy anyway, while every lone message would pay the whole wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from nlp.decoding import DecodeOptions

G = TypeVar("G")
T = TypeVar("T")
# (texts, options, per-text seeds or None) -> n-best lists
RunBatch = Callable[[list[str], DecodeOptions, list[int | None]], Sequence[Sequence[G]]]


@dataclass
class _Pending(Generic[G]):
    text: str
    future: asyncio.Future[Sequence[G]]
    arrived: float
    seed: int | None = None


@dataclass
class _Group(Generic[G]):
    """Pending requests that may share one call: same decoding options."""

    options: DecodeOptions
    items: list[_Pending[G]] = field(default_factory=list)


@dataclass(frozen=True)
class BatchLimits:
    """How requests share model calls, the same in `s2s chat`, `s2s bot`, `s2s serve` and
    `nlp.api` (each takes its defaults from here): at most `max_batch` requests a call, and
    an idle worker waits `max_wait_ms` for more before it starts."""

    max_batch: int = 32
    max_wait_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_wait_ms < 0:
            raise ValueError(
                f"max_batch must be >= 1 and max_wait_ms >= 0, got {self.max_batch} and "
                f"{self.max_wait_ms}"
            )

    @property
    def max_wait(self) -> float:
        """`max_wait_ms` in seconds."""
        return self.max_wait_ms / 1000.0


@dataclass
class BatchStats:
    calls: int = 0
    items: int = 0
    largest: int = 0

    @property
    def mean_batch(self) -> float:
        return self.items / self.calls if self.calls else 0.0


def options_key(options: DecodeOptions) -> tuple[object, ...]:
    """DecodeOptions is a mutable (unhashable) dataclass; its field values are the key."""
    return dataclasses.astuple(options)


class MicroBatcher(Generic[G]):
    """Collects `submit` calls into batches of at most `limits.max_batch` (an idle worker
    waiting at most `limits.max_wait` seconds for one to fill), and runs `run_batch` on one
    worker thread.

    One worker, not a pool: the model is one set of weights, and TensorFlow already uses all
    cores inside a call; two concurrent calls would only fight over them.
    """

    def __init__(self, run_batch: RunBatch[G], limits: BatchLimits | None = None) -> None:
        limits = limits or BatchLimits()
        self._run_batch = run_batch
        self.max_batch = limits.max_batch
        self.max_wait = limits.max_wait
        self.stats = BatchStats()
        self._groups: dict[tuple[object, ...], _Group[G]] = {}
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2s-generate")
        self._dispatcher: asyncio.Task[None] | None = None
        self._closing = False

    async def submit(
        self, text: str, options: DecodeOptions, seed: int | None = None
    ) -> Sequence[G]:
        """The n-best list for `text`; raises what the generator raised for its batch. A
        `seed` (sampling) is this text's own, so texts with different seeds still share a
        call."""
        if self._closing:
            raise RuntimeError("the batcher is closed")
        loop = asyncio.get_running_loop()
        if self._dispatcher is None:
            self._dispatcher = loop.create_task(self._dispatch(), name="s2s-micro-batcher")
        future: asyncio.Future[Sequence[G]] = loop.create_future()
        key = options_key(options)
        group = self._groups.setdefault(key, _Group(dataclasses.replace(options)))
        group.items.append(_Pending(text, future, loop.time(), seed))
        self._wakeup.set()
        return await future

    async def call(self, function: Callable[[], T]) -> T:
        """`function()` on the worker thread, after the model calls already running or
        waiting there: other work with the model (the picture of a retrieved reply) never
        runs beside a batch."""
        if self._closing:
            raise RuntimeError("the batcher is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    async def aclose(self) -> None:
        """Finish every request already submitted, then stop the worker thread."""
        self._closing = True
        self._wakeup.set()
        if self._dispatcher is not None:
            await self._dispatcher
        self._executor.shutdown(wait=True)

    def _ready_group(self, now: float) -> tuple[tuple[object, ...] | None, float]:
        """The key of the group to run now (oldest first), or None and how long to wait."""
        best: tuple[object, ...] | None = None
        oldest = float("inf")
        wait = float("inf")
        for key, group in self._groups.items():
            first = group.items[0].arrived
            full = len(group.items) >= self.max_batch
            due = first + self.max_wait - now
            if full or due <= 0 or self._closing:
                if first < oldest:
                    best, oldest = key, first
            else:
                wait = min(wait, due)
        return best, wait

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wakeup.clear()
            if not self._groups:
                if self._closing:
                    return
                await self._wakeup.wait()
                continue
            key, wait = self._ready_group(loop.time())
            if key is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait)
                continue
            group = self._groups[key]
            batch, group.items = group.items[: self.max_batch], group.items[self.max_batch :]
            if not group.items:
                del self._groups[key]
            await self._run(loop, group.options, batch)

    async def _run(
        self, loop: asyncio.AbstractEventLoop, options: DecodeOptions, batch: list[_Pending[G]]
    ) -> None:
        live = [item for item in batch if not item.future.done()]  # skip cancelled callers
        if not live:
            return
        self.stats.calls += 1
        self.stats.items += len(live)
        self.stats.largest = max(self.stats.largest, len(live))
        texts = [item.text for item in live]
        seeds = [item.seed for item in live]
        try:
            results = await loop.run_in_executor(
                self._executor, self._run_batch, texts, options, seeds
            )
            if len(results) != len(live):
                raise RuntimeError(f"generator returned {len(results)} lists for {len(live)}")
        except Exception as exc:  # handed to every waiting caller, never lost
            for item in live:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        for item, result in zip(live, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)
