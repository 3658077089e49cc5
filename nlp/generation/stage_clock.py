"""Where a generator's time goes: wall seconds per stage, cumulative.

A chat reply with the tuned decoding is a decoder call, a BM25 search, companion models'
scoring and a ranker; which of them bounds the latency decides what to make faster. The
server exports these totals on `/metrics` (`s2s_generation_stage_seconds_total`) and
`benchmarks/serve_load.py` splits each load level's time by them. Stages nest (the
companions' scoring runs inside ranking), and each second is counted once, in the innermost
stage, so the stages add up to the time spent generating.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STAGES = ("tokenize", "retrieve", "decode", "rank", "sentence encoder", "companions")


class StageClock:
    """Exclusive wall seconds and entries per stage, safe to read from another thread."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._seconds: dict[str, float] = {}
        self._calls: dict[str, int] = {}
        self._local = threading.local()  # each thread's stack of open stages

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Count the time inside the block to `name`, less the time of stages opened in it."""
        stack: list[list[float]] = self._local.__dict__.setdefault("stack", [])
        frame = [self._clock(), 0.0]  # start, seconds of nested stages
        stack.append(frame)
        try:
            yield
        finally:
            stack.pop()
            elapsed = self._clock() - frame[0]
            if stack:
                stack[-1][1] += elapsed
            with self._lock:
                self._seconds[name] = self._seconds.get(name, 0.0) + elapsed - frame[1]
                self._calls[name] = self._calls.get(name, 0) + 1

    def seconds(self) -> dict[str, float]:
        """Cumulative exclusive seconds per stage entered so far."""
        with self._lock:
            return dict(self._seconds)

    def calls(self) -> dict[str, int]:
        """Times each stage was entered (a call batching several chats counts once)."""
        with self._lock:
            return dict(self._calls)
