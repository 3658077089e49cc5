"""The decoder driving the real `Seq2Seq` (tiny, random weights): protocol fit, batching with
real padding masks, copy-extended vocabularies, and agreement with teacher forcing."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions, Decoder
from nlp.generation.codec import TextCodec
from nlp.model.seq2seq import Seq2Seq
from nlp.tokenizers.specials import BOS_ID, EOS_ID
from nlp.util.config import ExperimentConfig, ModelConfig

VOCAB = 20
SOURCES = [[5, 6, 7], [8, 9, 10, 11, 12, 13, 14], [4], [19, 4, 18, 5]]


def tiny_model(**overrides: object) -> Seq2Seq:
    keras.utils.set_random_seed(0)
    config = ModelConfig(vocab_size=VOCAB, embedding_dim=8, units=8, dropout=0.0)
    for name, value in overrides.items():
        setattr(config, name, value)
    return Seq2Seq(config)


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    """Without XLA (one compile per shape would dominate the run); the XLA path is compared
    with it in `test_xla_matches_the_plain_graph`."""
    return Decoder(tiny_model(), max_batch_size=3, jit_compile=False)


@pytest.mark.parametrize(
    "options",
    [
        DecodeOptions(strategy="greedy", max_length=8),
        DecodeOptions(
            strategy="beam",
            beam_size=4,
            n_best=3,
            max_length=8,
            length_penalty=0.6,
            coverage_penalty=0.2,
        ),
        DecodeOptions(strategy="sample", n_best=2, seed=5, top_k=5, max_length=8),
    ],
)
def test_hypotheses_are_well_formed(decoder: Decoder, options: DecodeOptions) -> None:
    results = decoder.decode(SOURCES, options)
    assert len(results) == len(SOURCES)
    for source, hypotheses in zip(SOURCES, results, strict=True):
        assert len(hypotheses) == options.n_best
        for h in hypotheses:
            assert all(3 < t < VOCAB for t in h.ids)  # no specials: PAD/BOS/EOS/UNK excluded
            assert len(h.ids) <= options.max_length
            assert h.attention.shape == (len(h.ids), len(source))
            np.testing.assert_allclose(h.attention.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_batched_results_equal_one_by_one_results(decoder: Decoder, strategy: str) -> None:
    options = DecodeOptions(strategy=strategy, beam_size=3, max_length=8, min_length=2)
    batched = decoder.decode(SOURCES, options)
    for source, together in zip(SOURCES, batched, strict=True):
        (alone,) = decoder.decode([source], options)
        assert alone[0].ids == together[0].ids
        assert alone[0].score == pytest.approx(together[0].score, abs=1e-4)
        np.testing.assert_allclose(alone[0].attention, together[0].attention, atol=1e-5)


def test_greedy_score_matches_teacher_forcing(decoder: Decoder) -> None:
    options = DecodeOptions(strategy="greedy", max_length=6, suppress_unk=False)
    for source, (best,) in zip(SOURCES, decoder.decode(SOURCES, options), strict=True):
        ended = len(best.ids) < options.max_length
        target = best.ids + ([EOS_ID] if ended else [])
        log_probs = decoder.model((tf.constant([source]), tf.constant([[BOS_ID, *target[:-1]]])))
        expected = sum(float(log_probs[0, t, token]) for t, token in enumerate(target))
        assert best.score == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(
    "options",
    [
        DecodeOptions(strategy="greedy", max_length=8),
        DecodeOptions(strategy="beam", beam_size=4, n_best=4, max_length=8, length_penalty=0.6,
                      coverage_penalty=0.2, no_repeat_ngram=2),
    ],
)
def test_xla_matches_the_plain_graph(decoder: Decoder, options: DecodeOptions) -> None:
    compiled = Decoder(decoder.model, jit_compile=True).decode(SOURCES, options)
    for xla, plain in zip(compiled, decoder.decode(SOURCES, options), strict=True):
        assert [h.ids for h in xla] == [h.ids for h in plain]
        assert [h.score for h in xla] == pytest.approx([h.score for h in plain], abs=1e-4)


def test_no_retracing_across_lengths_and_batch_sizes() -> None:
    decoder = Decoder(tiny_model(), jit_compile=False)
    for batch, length in [(1, 2), (2, 5), (3, 11)]:
        sources = [list(range(4, 4 + length))] * batch
        decoder.decode(sources, DecodeOptions(strategy="beam", max_length=length + 2))
    assert decoder.trace_count == 1


def _copy_decoding(generate_bias: float) -> list[str]:
    """Greedy output tokens of a copy model whose gate is fixed by `generate_bias` (sigmoid:
    -20 copies, +20 generates), for a source whose unknown words get their extended ids
    from the codec itself ("zebra" at 0 and 2 -> vocab_size + 0, "yak" -> vocab_size + 1)."""
    known = " ".join(f"w{i}" for i in range(VOCAB - 4))  # 16 words + 4 specials = VOCAB
    config = ExperimentConfig().with_overrides(["model.copy=true", "vocab.min_freq=1"])
    codec = TextCodec.fit(config, [Pair(known, known)])
    assert len(codec.vocab) == VOCAB
    source = codec.source("zebra yak zebra")
    assert source.ids == [VOCAB, VOCAB + 1, VOCAB]
    model = tiny_model(copy=True)
    kernel, bias = model.copy_gate.weights
    kernel.assign(np.zeros(kernel.shape, np.float32))
    bias.assign(np.full(bias.shape, generate_bias, np.float32))
    options = DecodeOptions(strategy="greedy", max_length=3, min_length=3)
    (best,) = Decoder(model, jit_compile=False).decode([source.ids], options)[0]
    assert best.attention.shape == (3, 3)
    return codec.output_tokens(best.ids, source)


def test_a_copy_model_copies_source_words_outside_the_vocabulary() -> None:
    """All probability on copying: each output token is a source word the vocabulary does
    not have, turned back into that word; generating instead, none is."""
    assert set(_copy_decoding(-20.0)) <= {"zebra", "yak"}
    assert not {"zebra", "yak"} & set(_copy_decoding(20.0))


def test_beam_search_reorders_the_coverage_state_with_its_beams() -> None:
    """With coverage, each step's attention depends on the attention paid before. If beam
    search kept a row's coverage when its hypothesis moved to another row, the attention it
    reports would differ from teacher forcing of the same output: they must be equal."""
    model = tiny_model(coverage=True)
    for weight in model.scorer.weights:  # make coverage matter at initialisation
        if "coverage" in weight.path:
            weight.assign(np.full(weight.shape, -4.0, np.float32))
    options = DecodeOptions(strategy="beam", beam_size=4, n_best=4, max_length=7,
                            suppress_unk=False)
    reordered = 0
    for source, hypotheses in zip(
        SOURCES, Decoder(model, jit_compile=False).decode(SOURCES, options), strict=True
    ):
        for h in hypotheses:
            forced = model.teacher_forcing(tf.constant([source]),
                                           tf.constant([[BOS_ID, *h.ids[:-1]]] if h.ids else
                                                       [[BOS_ID]]))
            expected = forced.attention.numpy()[0, : len(h.ids)]
            np.testing.assert_allclose(h.attention, expected, atol=1e-5)
            reordered += len(h.ids) > 1
    assert reordered  # some hypotheses were long enough for reordering to matter


@pytest.mark.parametrize("return_attention", [True, False])
@pytest.mark.parametrize("strategy", ["greedy", "sample"])
def test_dropping_finished_rows_changes_no_hypothesis(strategy: str,
                                                      return_attention: bool) -> None:
    # `compact_rows` takes finished rows out of the model's step; every row's tokens, score
    # and attention must be what the loop over all rows gives.
    from nlp.decoding.draws import sampling_draws
    from nlp.decoding.loop import dynamic_decode
    from nlp.decoding.params import DecodeParams
    from nlp.decoding.strategies import build_strategy

    model = tiny_model()
    options = DecodeOptions(strategy=strategy, n_best=4 if strategy == "sample" else 1,
                            max_length=12, seed=3, no_repeat_ngram=2, min_length=1,
                            max_length_ratio=1.5, temperature=1.5)  # limits 5, 11, 2, 6
    search = build_strategy(options)
    width = max(len(s) for s in SOURCES)
    source_ids = tf.constant([s + [0] * (width - len(s)) for s in SOURCES])
    draws = (sampling_draws(SOURCES, options.seed, search.width, options.max_length)
             if search.random else np.zeros([len(SOURCES), 0], np.float32))
    params = DecodeParams.from_options(options, draws)
    outputs = [
        tf.function(lambda ids, p, compact=compact: dynamic_decode(
            model, search, ids, p, no_repeat_ngram=2, return_attention=return_attention,
            compact_rows=compact))(source_ids, params)
        for compact in (False, True)
    ]
    everything, compacted = ([np.asarray(t) for t in output] for output in outputs)
    lengths = everything[2]
    assert lengths.min() < lengths.max()  # rows end at different steps
    np.testing.assert_array_equal(compacted[0], everything[0])  # ids
    np.testing.assert_array_equal(compacted[2], everything[2])  # lengths
    np.testing.assert_allclose(compacted[1], everything[1], atol=1e-5)  # scores
    np.testing.assert_allclose(compacted[3], everything[3], atol=1e-5)  # attention
