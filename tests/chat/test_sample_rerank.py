"""Sample-and-rerank: N nucleus samples per message as rows of one decoder call, seeded per
chat and turn so a chat's replies repeat and different chats' do not."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from nlp.chat.batcher import BatchLimits
from nlp.chat.responder import ChatResponder, chat_seed
from nlp.chat.settings import ChatSettings, SettingsStore
from nlp.decoding import DecodeOptions
from nlp.decoding.draws import sampling_draws
from tests.fakes.fake_generators import ScriptedGenerator, fake_model

SAMPLE = DecodeOptions(strategy="sample", top_p=0.9, n_best=4, max_length=8)


def test_chat_seeds_differ_by_chat_and_turn_and_repeat() -> None:
    assert chat_seed("a", 0) == chat_seed("a", 0)
    assert len({chat_seed("a", 0), chat_seed("a", 1), chat_seed("b", 0)}) == 3
    assert chat_seed("a", 0, base=7) != chat_seed("a", 0)
    assert all(0 <= chat_seed(c, t) < 2**31 for c in "abc" for t in range(5))


def test_per_input_seeds_make_draws_independent_of_batch_mates() -> None:
    source = [5, 6, 7]
    together = sampling_draws([source, source], None, 3, 4, seeds=[1, 2])
    alone = sampling_draws([source], None, 3, 4, seeds=[2])
    np.testing.assert_array_equal(together[3:], alone)
    assert not np.array_equal(together[:3], together[3:])


async def test_responder_seeds_each_chat_turn_and_batches_chats_together() -> None:
    generator = ScriptedGenerator()
    responder = ChatResponder(
        fake_model(generator),
        store=SettingsStore(":memory:", ChatSettings.from_options(SAMPLE)),
        base_options=SAMPLE,
        batching=BatchLimits(max_wait_ms=50),
    )
    await asyncio.gather(responder.respond("a", "hi"), responder.respond("b", "hi"))
    await responder.respond("a", "and then?")
    await responder.respond("a", "/reset")
    await responder.respond("a", "hi")
    await responder.aclose()
    assert [len(texts) for texts, _ in generator.calls] == [2, 1, 1]  # chats share a call
    first, second, third = generator.seeds
    assert sorted(first) == sorted([chat_seed("a", 0), chat_seed("b", 0)])
    assert second == [chat_seed("a", 1)] and third == [chat_seed("a", 0)]  # replay repeats
    assert all(options.n_best >= 4 for _, options in generator.calls)


def test_sample_and_rerank_with_a_real_model_is_one_call_and_repeatable(
    tiny_bundle: Path,
) -> None:
    from nlp.generation.generator import Generator

    generator = Generator.from_bundle(tiny_bundle)
    options = DecodeOptions(strategy="sample", temperature=2.0, top_p=0.95, n_best=4,
                            max_length=8)
    calls = []
    decode = generator.decoder.decode
    generator.decoder.decode = lambda *a, **k: calls.append(1) or decode(*a, **k)  # type: ignore[method-assign]
    texts = ["how are you ?"] * 3
    batch = generator.generate(texts, options, seeds=[11, 11, 12])
    assert len(calls) == 1 and all(len(n_best) == 4 for n_best in batch)
    replies = [[g.text for g in n_best] for n_best in batch]
    assert replies[0] == replies[1]  # same chat turn: the same samples
    assert replies[0] != replies[2]  # another chat: other samples
    (again,) = generator.generate(texts[:1], options, seeds=[12])
    assert [g.text for g in again] == replies[2]  # alone or batched, the same
    assert [g.score for g in again] == sorted((g.score for g in again), reverse=True)
