"""Where generating's time goes: the stage clock's exclusive accounting, and the generator
counting each stage it runs (what the server's /metrics and the load benchmark report)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nlp.decoding import DecodeOptions
from nlp.generation.stage_clock import StageClock
from tests.generation.test_mmi import ScriptedCompanion


def test_nested_stages_count_each_second_once_in_the_innermost() -> None:
    now = [0.0]
    clock = StageClock(lambda: now[0])
    with clock.stage("rank"):
        now[0] += 1.0
        with clock.stage("companions"):
            now[0] += 3.0
        now[0] += 0.5
    with clock.stage("decode"):
        now[0] += 2.0
    with clock.stage("rank"):
        now[0] += 0.25
    assert clock.seconds() == {"rank": 1.75, "companions": 3.0, "decode": 2.0}
    assert clock.calls() == {"rank": 2, "companions": 1, "decode": 1}
    assert sum(clock.seconds().values()) == now[0]


def test_a_stage_that_raises_is_still_counted() -> None:
    now = [0.0]
    clock = StageClock(lambda: now[0])
    with pytest.raises(RuntimeError), clock.stage("decode"):
        now[0] += 1.0
        raise RuntimeError("boom")
    assert clock.seconds() == {"decode": 1.0}


def test_the_generator_counts_its_stages_within_its_wall_time(
    tiny_bundle: Path,
) -> None:
    from nlp.generation.bundle import load_bundle
    from nlp.generation.generator import Generator

    companion = ScriptedCompanion([0.0] * 8)
    generator = Generator(load_bundle(tiny_bundle), companions=[companion])
    started = time.perf_counter()
    generator.generate(["how are you?", "hello"],
                       DecodeOptions(n_best=4, rerank="mmi-antilm", mmi_lambda=0.5))
    wall = time.perf_counter() - started
    seconds = generator.clock.seconds()
    # nothing is retrieved (no --retrieve, no retrieve-and-refine): no retrieve stage
    assert set(seconds) == {"tokenize", "decode", "rank", "companions"}
    assert all(value >= 0 for value in seconds.values())
    assert seconds["decode"] > 0 and companion.calls == 1
    assert sum(seconds.values()) <= wall
    # the two chats are one call of each stage
    assert generator.clock.calls() == {"tokenize": 1, "decode": 1, "rank": 1, "companions": 1}
