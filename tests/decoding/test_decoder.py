"""The decoder against a scripted model: fixed log-probability tables, no network.

The scripted model's next-token distribution depends only on (step, previous token), looked
up in a table built from a few rules, so every case below is worked out by hand.
"""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from nlp.decoding import DecodeOptions, Decoder, Hypothesis
from nlp.decoding.strategies import top_k_wide
from nlp.tokenizers.specials import BOS_ID, EOS_ID, UNK_ID
from tests.conftest import REPO

VOCAB = 10
WORDS = (4, 5, 6, 7, 8, 9)  # ids that are not special
Rules = dict[int, dict[int, float]]


def distribution(probs: dict[int, float]) -> np.ndarray:
    """Log-probabilities over VOCAB: the given tokens, the rest of the mass shared evenly."""
    row = np.full(VOCAB, 0.0)
    rest = [t for t in range(VOCAB) if t not in probs]
    remaining = 1.0 - sum(probs.values())
    row[rest] = max(remaining, 1e-6) / len(rest)
    for token, p in probs.items():
        row[token] = p
    return np.log(row / row.sum())


def script(
    rules: Rules, at_step: dict[tuple[int, int], dict[int, float]] | None = None, steps: int = 12
) -> np.ndarray:
    """[steps, VOCAB(prev), VOCAB(next)] table; `rules` by previous token, `at_step` by
    (step, previous token); unlisted previous tokens lead to a uniform distribution."""
    table = np.tile(distribution({}), (steps, VOCAB, 1))
    for prev, probs in rules.items():
        table[:, prev] = distribution(probs)
    for (step, prev), probs in (at_step or {}).items():
        table[step, prev] = distribution(probs)
    return table.astype(np.float32)


class ScriptedModel:
    """Implements the model protocol with a lookup table.

    Attention peaks at source position (previous token mod source length), so the attention
    a hypothesis reports shows whether it was gathered along the right beam parents.
    `favour_source` adds that much to the logit of the input's first token, making inputs
    decode differently (for the batching test). `steps_run` counts decoding steps executed.
    """

    def __init__(self, table: np.ndarray, favour_source: float = 0.0) -> None:
        self.table = tf.constant(table)
        self.favour_source = favour_source
        self.steps_run = tf.Variable(0, dtype=tf.int64)

    def encode(self, source_ids: tf.Tensor, training: bool = False) -> tuple[Any, Any]:
        batch = tf.shape(source_ids)[0]
        state = {"step": tf.zeros([batch], tf.int32)}
        context = {"mask": tf.not_equal(source_ids, 0), "source_ids": source_ids}
        return state, context

    def decode_step(
        self, prev_ids: tf.Tensor, state: Any, context: Any, training: bool = False
    ) -> tuple[tf.Tensor, Any, tf.Tensor]:
        self.steps_run.assign_add(1)
        step = tf.minimum(state["step"], self.table.shape[0] - 1)
        logits = tf.gather_nd(self.table, tf.stack([step, prev_ids], axis=-1))
        first_source = context["source_ids"][:, 0]
        logits += self.favour_source * tf.one_hot(first_source, VOCAB)
        mask = context["mask"]
        source_len = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        peak = tf.one_hot(prev_ids % source_len, tf.shape(mask)[1]) * 3.0
        attention = tf.nn.softmax(tf.where(mask, peak, -1e9))
        return tf.nn.log_softmax(logits), {"step": state["step"] + 1}, attention


def plain_decoder(model: ScriptedModel, **kwargs: Any) -> Decoder:
    """A decoder without XLA: these logic tests would otherwise compile once per shape.
    The XLA path (the default) is checked against it in `test_xla_gives_the_same_results`."""
    return Decoder(model, jit_compile=False, **kwargs)


_DECODERS: dict[str, Decoder] = {}


def decode_one(rules: Rules, source: list[int] | None = None, **options: Any) -> list[Hypothesis]:
    """Decode one source under `rules`; decoders are shared per script to save traces."""
    key = repr(rules)
    if key not in _DECODERS:
        _DECODERS[key] = plain_decoder(ScriptedModel(script(rules)))
    return _DECODERS[key].decode([source or [4, 5, 6]], DecodeOptions(**options))[0]


# From BOS, 4 is likelier than 5, but 4 leads to a flat distribution while 5 ends surely:
# greedy takes 4 (0.5) then 5 (0.35) then EOS: 0.5*0.35*0.9 = 0.158 < beam's 5 EOS: 0.4*0.9.
BEAM_BEATS_GREEDY: Rules = {
    BOS_ID: {4: 0.5, 5: 0.4},
    4: {5: 0.35, 6: 0.25, 7: 0.2, EOS_ID: 0.1},
    5: {EOS_ID: 0.9},
}
# Short [5] (0.4*0.9 = 0.36, length 2 with EOS) against long [4, 6, 7] (0.5*0.8^3 = 0.256,
# length 4): the short one wins on raw probability, the long one once lengths are rewarded.
SHORT_VS_LONG: Rules = {
    BOS_ID: {4: 0.5, 5: 0.4},
    4: {6: 0.8},
    6: {7: 0.8},
    7: {EOS_ID: 0.8},
    5: {EOS_ID: 0.9},
}


def test_greedy_takes_the_most_probable_token_each_step() -> None:
    (best,) = decode_one(BEAM_BEATS_GREEDY, strategy="greedy")
    assert best.ids == [4, 5]
    assert best.score == pytest.approx(math.log(0.5 * 0.35 * 0.9), abs=1e-5)


def test_beam_finds_a_higher_scoring_sequence_than_greedy() -> None:
    greedy = decode_one(BEAM_BEATS_GREEDY, strategy="greedy")[0]
    beam = decode_one(BEAM_BEATS_GREEDY, strategy="beam", beam_size=3)[0]
    assert beam.ids == [5]
    assert beam.score == pytest.approx(math.log(0.4 * 0.9), abs=1e-5)
    assert beam.score > greedy.score


def test_length_penalty_changes_which_hypothesis_wins() -> None:
    plain = decode_one(SHORT_VS_LONG, strategy="beam", beam_size=4)[0]
    assert plain.ids == [5]
    rewarded = decode_one(SHORT_VS_LONG, strategy="beam", beam_size=4, length_penalty=2.0)[0]
    assert rewarded.ids == [4, 6, 7]
    expected = math.log(0.5 * 0.8**3) / ((5 + 4) / 6) ** 2.0  # 4 tokens with EOS
    assert rewarded.score == pytest.approx(expected, abs=1e-5)


def test_coverage_penalty_prefers_hypotheses_that_cover_the_source() -> None:
    # A one-token source is fully covered by any output; a long source only by long outputs.
    assert decode_one(SHORT_VS_LONG, [4], strategy="beam", coverage_penalty=1.0)[0].ids == [5]
    covered = decode_one(SHORT_VS_LONG, [4, 5, 6, 7], strategy="beam", coverage_penalty=1.0)
    assert covered[0].ids == [4, 6, 7]


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_no_repeat_ngram_blocks_the_repeat_the_script_pushes_for(strategy: str) -> None:
    # Ending is made very unlikely so that blocking leads to another word, not to an early end.
    loop: Rules = {prev: {EOS_ID: 1e-4} for prev in (BOS_ID, *WORDS)}
    loop.update({prev: {nxt: 0.9, EOS_ID: 1e-4} for prev, nxt in [(BOS_ID, 4), (4, 5), (5, 4)]})
    free = decode_one(loop, strategy=strategy, max_length=8)[0].ids
    assert free == [4, 5] * 4
    for n in (1, 2, 3):
        ids = decode_one(loop, strategy=strategy, max_length=8, no_repeat_ngram=n)[0].ids
        grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
        assert len(grams) == len(set(grams)), (n, ids)
        # Blocked, not ended: another word is taken (for n=1 until every word has been used).
        assert ids[0] == 4 and len(ids) == (len(WORDS) if n == 1 else 8)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_no_repeat_ngram_as_long_as_the_output_decodes(strategy: str) -> None:
    # The longest n-gram the options accept: it cannot repeat, so nothing is blocked. (One
    # longer than max_length + 1 used to crash inside the graph; options now refuse it.)
    loop: Rules = {prev: {4: 0.9, EOS_ID: 1e-4} for prev in (BOS_ID, *WORDS)}
    ids = decode_one(loop, strategy=strategy, max_length=3, no_repeat_ngram=3)[0].ids
    assert ids == [4, 4, 4]


def test_min_length_suppresses_the_end_token() -> None:
    ends_now: Rules = {BOS_ID: {EOS_ID: 0.9}, **{w: {EOS_ID: 0.9} for w in WORDS}}
    assert decode_one(ends_now, strategy="greedy")[0].ids == []
    for strategy in ("greedy", "beam"):
        (best,) = decode_one(ends_now, strategy=strategy, min_length=3)
        assert len(best.ids) == 3
        assert EOS_ID not in best.ids


def test_max_length_absolute_and_relative_to_each_source() -> None:
    endless: Rules = {BOS_ID: {4: 0.9}, **{w: {4: 0.9} for w in WORDS}}
    decoder = plain_decoder(ScriptedModel(script(endless)))
    sources = [[4, 5], [4, 5, 6, 7, 8, 9]]
    absolute = decoder.decode(sources, DecodeOptions(strategy="greedy", max_length=5))
    assert [len(h[0].ids) for h in absolute] == [5, 5]
    relative = DecodeOptions(strategy="beam", max_length=5, max_length_ratio=1.5)
    assert [len(h[0].ids) for h in decoder.decode(sources, relative)] == [3, 5]


def test_unknown_token_suppressed_unless_allowed() -> None:
    likes_unk: Rules = {BOS_ID: {UNK_ID: 0.8, 4: 0.1}, UNK_ID: {EOS_ID: 0.9}, 4: {EOS_ID: 0.9}}
    assert decode_one(likes_unk, strategy="greedy")[0].ids == [4]
    assert decode_one(likes_unk, strategy="greedy", suppress_unk=False)[0].ids == [UNK_ID]


def test_n_best_lists_are_sorted_and_distinct() -> None:
    hypotheses = decode_one(SHORT_VS_LONG, strategy="beam", beam_size=5, n_best=5)
    assert len(hypotheses) == 5
    scores = [h.score for h in hypotheses]
    assert scores == sorted(scores, reverse=True)
    assert len({tuple(h.ids) for h in hypotheses}) == 5
    assert hypotheses[0].ids == [5] and hypotheses[1].ids == [4, 6, 7]


# One first token dominates: 4 (0.9) then three near-equal endings, so every hypothesis of a
# plain beam of width 3 starts with 4 ([4,7], [4,8], [4,9] all beat [5] and [6] at 0.045).
ONE_OPENING: Rules = {
    BOS_ID: {4: 0.9, 5: 0.05, 6: 0.05},
    4: {7: 0.34, 8: 0.33, 9: 0.33},
    5: {EOS_ID: 0.9},
    6: {EOS_ID: 0.9},
    7: {EOS_ID: 0.9},
    8: {EOS_ID: 0.9},
    9: {EOS_ID: 0.9},
}


def test_plain_beam_hypotheses_share_their_first_token() -> None:
    hypotheses = decode_one(ONE_OPENING, strategy="beam", beam_size=3, n_best=3)
    assert {h.ids[0] for h in hypotheses} == {4}


@pytest.mark.parametrize("groups", [3, 2])
def test_diverse_beam_groups_take_distinct_first_tokens(groups: int) -> None:
    hypotheses = decode_one(
        ONE_OPENING, strategy="diverse_beam", beam_size=groups, beam_groups=groups,
        diversity_penalty=10.0, n_best=groups,
    )
    assert len({h.ids[0] for h in hypotheses}) == groups
    assert hypotheses[0].ids == [4, 7]  # the first group is an unpenalised beam
    # Scores are true log-probabilities (the penalty only steers), best first.
    table = script(ONE_OPENING)
    for h in hypotheses:
        path = [BOS_ID, *h.ids, EOS_ID]
        expected = sum(table[step, path[step], path[step + 1]] for step in range(len(path) - 1))
        assert h.score == pytest.approx(expected, abs=1e-4)
    assert [h.score for h in hypotheses] == sorted((h.score for h in hypotheses), reverse=True)


def test_diverse_beam_without_penalty_repeats_the_plain_beam_per_group() -> None:
    hypotheses = decode_one(
        ONE_OPENING, strategy="diverse_beam", beam_size=4, beam_groups=2, n_best=4
    )
    plain = decode_one(ONE_OPENING, strategy="beam", beam_size=2, n_best=2)
    assert sorted(h.ids for h in hypotheses) == sorted([h.ids for h in plain] * 2)


@pytest.mark.parametrize(
    "options",
    [
        DecodeOptions(strategy="greedy", max_length=6),
        DecodeOptions(
            strategy="diverse_beam", beam_size=4, beam_groups=2, diversity_penalty=1.0,
            n_best=4, max_length=6, length_penalty=1.0,
        ),
        DecodeOptions(
            strategy="beam",
            beam_size=3,
            n_best=3,
            max_length=6,
            length_penalty=1.0,
            coverage_penalty=0.5,
            no_repeat_ngram=2,
        ),
    ],
)
def test_batched_results_equal_one_by_one_results(options: DecodeOptions) -> None:
    sources = [[4, 5, 6], [7], [9, 8, 7, 6, 5, 4, 9], [5, 4]]
    model = ScriptedModel(script(BEAM_BEATS_GREEDY), favour_source=1.5)
    decoder = plain_decoder(model, max_batch_size=3)
    batched = decoder.decode(sources, options)
    assert len({tuple(h[0].ids) for h in batched}) > 1  # the inputs really differ
    for source, together in zip(sources, batched, strict=True):
        (alone,) = decoder.decode([source], options)
        assert [h.ids for h in alone] == [h.ids for h in together]
        assert [h.score for h in alone] == pytest.approx([h.score for h in together], abs=1e-5)
        for a, b in zip(alone, together, strict=True):
            np.testing.assert_allclose(a.attention, b.attention, atol=1e-6)


def test_attention_follows_beam_parents_and_is_trimmed() -> None:
    source = [4, 5, 6, 7, 8]
    decoder = plain_decoder(ScriptedModel(script(SHORT_VS_LONG)))
    padded = np.array([[*source, 0, 0, 0]], np.int32)
    options = DecodeOptions(strategy="beam", beam_size=4, n_best=4)
    from_array = decoder.decode(padded, options)[0]
    assert [h.ids for h in from_array] == [h.ids for h in decoder.decode([source], options)[0]]
    for hypothesis in from_array:
        assert hypothesis.attention.shape == (len(hypothesis.ids), len(source))
        previous = [BOS_ID, *hypothesis.ids][: len(hypothesis.ids)]
        expected_peaks = [p % len(source) for p in previous]
        assert hypothesis.attention.argmax(axis=1).tolist() == expected_peaks
        np.testing.assert_allclose(hypothesis.attention.sum(axis=1), 1.0, atol=1e-5)
    without = decoder.decode([source], options, return_attention=False)[0][0]
    assert without.attention.shape == (len(without.ids), 0)


@pytest.mark.parametrize("strategy", ["beam", "greedy"])
def test_the_loop_stops_once_every_hypothesis_is_finished(strategy: str) -> None:
    # Both [5] (ends at step 2) and [4, 6, 7] (the greedy path) are finished after step 4.
    model = ScriptedModel(script(SHORT_VS_LONG))
    options = DecodeOptions(strategy=strategy, beam_size=2, max_length=30)
    plain_decoder(model).decode([[4, 5]], options)
    assert int(model.steps_run.numpy()) == 4


FLAT: Rules = {t: {4: 0.3, 5: 0.25, 6: 0.2} for t in (BOS_ID, *WORDS)}


def sample_tokens(**options: Any) -> list[int]:
    decoder = plain_decoder(ScriptedModel(script(FLAT)))
    # Distinct inputs: a seeded sample is a function of the input, so copies would agree.
    sources = [[4 + i % 6, 4 + i // 6] for i in range(20)]
    results = decoder.decode(sources, DecodeOptions(strategy="sample", max_length=6, **options))
    return [token for hypotheses in results for h in hypotheses for token in h.ids]


def test_top_k_sampling_never_picks_outside_the_top_k() -> None:
    assert set(sample_tokens(seed=1, top_k=3)) == {4, 5, 6}
    assert set(sample_tokens(seed=1, top_k=1)) == {4}
    assert not set(sample_tokens(seed=1)) <= {4, 5, 6}  # unfiltered sampling does go there


def test_top_p_sampling_keeps_only_the_nucleus() -> None:
    # 4 (0.3) and 5 (0.25) reach 0.55 >= 0.5; 6 lies outside the nucleus.
    assert set(sample_tokens(seed=2, top_p=0.5)) == {4, 5}


def test_sampling_with_a_seed_repeats_exactly() -> None:
    first = sample_tokens(seed=7, temperature=1.5, n_best=3)
    assert first == sample_tokens(seed=7, temperature=1.5, n_best=3)
    assert first != sample_tokens(seed=8, temperature=1.5, n_best=3)



@pytest.mark.parametrize("jit_compile", [False, True])
def test_a_seeded_sample_does_not_depend_on_the_batch_mates(jit_compile: bool) -> None:
    # Length sorting and max_batch_size=3 put the input in row 1 of the first chunk, in row
    # 2 of the second chunk, and (under XLA) beside padding copies of a batch-mate.
    decoder = Decoder(ScriptedModel(script(FLAT)), max_batch_size=3, jit_compile=jit_compile)
    options = DecodeOptions(strategy="sample", max_length=6, n_best=2, seed=11)
    target = [6, 7, 8]
    alone = decoder.decode([target], options)[0]
    batches = [
        [[4], target],
        [[4], [5, 4], [7, 7], [5, 5], [9, 9], target, [9, 8, 7, 6]],
        [[9, 8, 7, 6], [4, 4, 4, 4, 4], target],
    ]
    for batch in batches:
        together = decoder.decode(batch, options)[batch.index(target)]
        assert [h.ids for h in together] == [h.ids for h in alone], batch
    assert alone[0].ids != alone[1].ids  # the two samples of one input are not copies
    reseeded = DecodeOptions(strategy="sample", max_length=6, n_best=2, seed=12)
    assert decoder.decode([target], reseeded)[0][0].ids != alone[0].ids


@pytest.mark.parametrize(
    "options",
    [
        DecodeOptions(strategy="greedy", max_length=7, min_length=1, no_repeat_ngram=2),
        DecodeOptions(strategy="beam", beam_size=3, n_best=3, max_length=7, length_penalty=0.8,
                      coverage_penalty=0.3, max_length_ratio=1.5),
    ],
)
def test_xla_gives_the_same_results(options: DecodeOptions) -> None:
    sources = [[4, 5, 6], [7], [9, 8, 7, 6, 5, 4, 9, 8, 7]]
    model = ScriptedModel(script(BEAM_BEATS_GREEDY), favour_source=1.5)
    compiled = Decoder(model, jit_compile=True).decode(sources, options)
    for xla, plain in zip(compiled, plain_decoder(model).decode(sources, options), strict=True):
        assert [h.ids for h in xla] == [h.ids for h in plain]
        assert [h.score for h in xla] == pytest.approx([h.score for h in plain], abs=1e-5)
        for a, b in zip(xla, plain, strict=True):
            np.testing.assert_allclose(a.attention, b.attention, atol=1e-5)


def test_one_trace_per_structural_choice() -> None:
    decoder = plain_decoder(ScriptedModel(script(BEAM_BEATS_GREEDY)))
    for length, batch in [(1, 1), (3, 2), (9, 5), (4, 3)]:
        sources = [list(range(4, 4 + length))] * batch
        for alpha in (0.0, 0.7):
            options = DecodeOptions(
                strategy="beam",
                max_length=4 + length,
                min_length=length % 3,
                length_penalty=alpha,
                suppress_unk=length % 2 == 0,
            )
            decoder.decode(sources, options)
    assert decoder.trace_count == 1
    decoder.decode([[4]], DecodeOptions(strategy="beam", beam_size=2))
    assert decoder.trace_count == 2



def test_the_decoder_keeps_a_bounded_number_of_graphs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each n-gram size is a graph of its own, and a server's clients choose it: kept without
    bound, every new one held its memory for good. The least recently used is forgotten."""
    from nlp.decoding import decoder as module

    monkeypatch.setattr(module, "MAX_GRAPHS", 3)
    decoder = plain_decoder(ScriptedModel(script(BEAM_BEATS_GREEDY)))
    for n in (0, 2, 3, 0, 4):  # 0 used again: 2 is the least recently used when 4 comes
        decoder.decode([[4, 5]], DecodeOptions(strategy="greedy", no_repeat_ngram=n))
    assert len(decoder._compiled) == 3
    assert {key[1] for key in decoder._compiled} == {0, 3, 4}


@pytest.mark.parametrize("width", [7, 64, 1000, 8003])
def test_wide_top_k_equals_tensorflow_top_k(width: int) -> None:
    values = np.random.default_rng(width).normal(size=(6, width)).astype(np.float32)
    values[0, : width // 2] = -np.inf  # suppressed tokens, as after the constraints
    values[1, 2:] = -np.inf  # fewer than k allowed tokens
    expected = tf.math.top_k(values, k=5)
    got = top_k_wide(tf.constant(values), 5)
    np.testing.assert_array_equal(got[0].numpy(), expected.values.numpy())
    finite = np.isfinite(expected.values.numpy())  # ids of -inf entries are arbitrary
    np.testing.assert_array_equal(got[1].numpy()[finite], expected.indices.numpy()[finite])
    assert ((got[1].numpy() >= 0) & (got[1].numpy() < width)).all()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"strategy": "bem"}, "unknown decoding strategy 'bem'"),
        ({"beam_size": 0}, "beam_size"),
        ({"temperature": 0.0}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"max_length": 0}, "max_length"),
        ({"min_length": 40}, "min_length"),
        ({"length_penalty": -1.0}, "length_penalty"),
        ({"coverage_penalty": float("nan")}, "coverage_penalty"),
        ({"n_best": 6}, "n_best"),
        ({"strategy": "diverse_beam", "beam_size": 5, "beam_groups": 2}, "multiple of"),
        ({"diversity_penalty": -1.0}, "diversity_penalty"),
        ({"beam_groups": 0}, "beam_groups"),
        ({"strategy": "greedy", "n_best": 2}, "n_best"),
        ({"seed": -3}, "seed"),
        ({"seed": 2**31}, "seed"),
        ({"no_repeat_ngram": 1.5}, "no_repeat_ngram"),
        ({"max_length": 3, "no_repeat_ngram": 5},
         r"no_repeat_ngram \(5\) must not exceed max_length \(3\)"),
        ({"max_length": 3, "no_repeat_ngram": 4}, "no_repeat_ngram"),
    ],
)
def test_invalid_options_raise_clear_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DecodeOptions(**fields)


def test_empty_source_is_rejected() -> None:
    decoder = plain_decoder(ScriptedModel(script({})))
    with pytest.raises(ValueError, match="source 1 is empty"):
        decoder.decode([[4], []], DecodeOptions())


@pytest.mark.slow
def test_options_import_without_tensorflow() -> None:
    code = "import sys, nlp.decoding; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# From BOS, the common word 4 is likelier than the rarest, 9; both then end.
COMMON_OR_RARE: Rules = {BOS_ID: {4: 0.5, 9: 0.3}, 4: {EOS_ID: 0.9}, 9: {EOS_ID: 0.9}}


def test_rarity_runs_from_the_commonest_word_to_the_rarest_by_log_rank() -> None:
    from nlp.decoding.constraints import rarity

    words = len(WORDS)  # ids 4..9, in frequency order
    expected = [0.0] * 4 + [math.log(rank) / math.log(words) for rank in range(1, words + 1)]
    assert rarity(tf.constant(VOCAB)).numpy() == pytest.approx(expected)
    # a copying model's row is wider by its batch's source length: a word's rarity is the
    # vocabulary's, whatever the width (it depended on the batch), the source's ids the rarest
    wider = rarity(tf.constant(VOCAB + 7), VOCAB).numpy()
    assert wider[:VOCAB] == pytest.approx(expected) and (wider[VOCAB:] == 1.0).all()


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_rare_word_weight_adds_weighted_rarity_to_each_steps_log_probability(
    strategy: str
) -> None:
    plain = decode_one(COMMON_OR_RARE, strategy=strategy)[0]
    assert plain.ids == [4]
    # log 0.3 + 1 x rarity 1 > log 0.5 + 1 x rarity 0; the end token's rarity is 0
    weighted = decode_one(COMMON_OR_RARE, strategy=strategy, rare_word_weight=1.0)[0]
    assert weighted.ids == [9]
    assert weighted.score == pytest.approx(math.log(0.3) + 1.0 + math.log(0.9), abs=1e-4)
