"""The one Seq2Seq model: shapes, masks, teacher forcing == step-by-step, copying."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from nlp.model import Seq2Seq
from nlp.model.distribution import DecoderOutputs, log_softmax_at
from nlp.model.losses import coverage_losses, masked_mean_loss, token_losses
from nlp.util.config import ModelConfig
from tests.conftest import TRANSFORMER

TRANSFORMERS = [
    TRANSFORMER,
    {"architecture": "transformer", "heads": 4, "input_feeding": False, "encoder_layers": 2,
     "decoder_layers": 2, "tie_output": True, "share_embeddings": False},
]
VARIANTS = [
    {},
    TRANSFORMERS[0],
    {"cell": "gru", "attention": "bahdanau", "encoder_layers": 2, "decoder_layers": 2},
    {"attention": "dot", "tie_output": True, "share_embeddings": False},
    {"input_feeding": False, "copy": True},
    {"attention": "none", "peek": True},
]
# Every cell x attention x input feeding x copy, plus tied output: the teacher-forcing path
# (one projection after the loop, fused recurrence without input feeding) must equal decoding.
ALL_VARIANTS = [
    {"cell": cell, "attention": attention, "input_feeding": feeding, "copy": copy}
    for cell in ("lstm", "gru")
    for attention in ("dot", "general", "bahdanau")
    for feeding in (True, False)
    for copy in (False, True)
] + [
    {"tie_output": True, "share_embeddings": False},
    {"tie_output": True, "input_feeding": False, "copy": True, "decoder_layers": 2},
    {"cell": "gru", "input_feeding": True, "decoder_layers": 2, "encoder_layers": 2},
    {"coverage": True},
    {"coverage": True, "attention": "bahdanau", "input_feeding": False, "copy": True},
    {"coverage": True, "attention": "dot", "cell": "gru"},
    # the decoder modes: basic (no attention), feedback, peek, and peek beside attention
    {"attention": "none", "input_feeding": False},
    {"attention": "none", "input_feeding": True, "cell": "gru"},
    {"attention": "none", "input_feeding": False, "peek": True, "decoder_layers": 2},
    {"attention": "none", "input_feeding": True, "peek": True},
    {"peek": True, "cell": "gru", "copy": True},
    {"peek": True, "input_feeding": False, "coverage": True, "attention": "bahdanau"},
    # the Transformer in place of the recurrent encoder and decoder
    *TRANSFORMERS,
]


def make(**kw: object) -> Seq2Seq:
    tf.random.set_seed(0)
    return Seq2Seq(ModelConfig(vocab_size=30, embedding_dim=8, units=8, dropout=0.0, **kw))


@pytest.mark.parametrize("kw", ALL_VARIANTS)
def test_teacher_forcing_equals_step_by_step(kw: dict[str, object]) -> None:
    model = make(**kw)
    source = np.array([[5, 6, 7, 0, 0], [8, 9, 9, 10, 11]])
    if kw.get("copy"):
        source = np.array([[5, 31, 7, 31, 0], [8, 9, 32, 10, 11]])
    target_in = np.array([[1, 5, 6, 7], [1, 9, 8, 4]])
    forced = model((source, target_in)).numpy()
    state, context = model.encode(source)
    for t in range(target_in.shape[1]):
        log_probs, state, weights = model.decode_step(target_in[:, t], state, context)
        np.testing.assert_allclose(forced[:, t], log_probs.numpy(), atol=1e-5)
        np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.exp(forced).sum(-1), 1.0, atol=1e-4)


@pytest.mark.parametrize("kw", VARIANTS)
def test_padding_changes_nothing(kw: dict[str, object]) -> None:
    """Extra padding on the source must not change a single output probability."""
    model = make(**kw)
    short = np.array([[5, 6, 7]])
    padded = np.array([[5, 6, 7, 0, 0, 0]])
    target_in = np.array([[1, 5, 6]])
    np.testing.assert_allclose(
        model((short, target_in)).numpy()[..., :30],
        model((padded, target_in)).numpy()[..., :30],
        atol=1e-5,
    )
    state, context = model.encode(padded)
    _, _, weights = model.decode_step(tf.constant([1]), state, context)
    assert np.all(weights.numpy()[0, 3:] == 0.0)


def test_copy_points_at_out_of_vocabulary_source_words() -> None:
    model = make(copy=True)
    # 30 + 1: the word at position 1 is out of vocabulary; position 3 repeats it.
    source = np.array([[5, 31, 7, 31]])
    state, context = model.encode(source)
    log_probs, _, _ = model.decode_step(tf.constant([1]), state, context)
    probs = np.exp(log_probs.numpy()[0])
    assert probs.shape == (34,)
    assert probs.sum() == pytest.approx(1.0, abs=1e-4)
    assert probs[31] > 1e-4  # copy of source position 1 (both occurrences)
    assert probs[33] < 1e-6  # position 3 is not a first occurrence


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7), (4, 1, 7)])
def test_log_softmax_at_and_its_written_out_gradient_equal_tensorflows(
    shape: tuple[int, ...],
) -> None:
    """The loss's XLA kernels: log softmax at the label, and the gradient of any weighted
    sum of it, as TensorFlow's log_softmax and automatic gradient give them (eagerly and
    traced with unknown shapes, as the training step traces it)."""
    rng = np.random.default_rng(len(shape))
    logits = tf.constant(rng.normal(0, 3, shape), tf.float32)
    labels = tf.constant(rng.integers(0, shape[-1], shape[:-1]), tf.int32)
    upstream = tf.constant(rng.normal(0, 1, shape[:-1]), tf.float32)

    def value_and_gradient(function):  # type: ignore[no-untyped-def]
        with tf.GradientTape() as tape:
            tape.watch(logits)
            values = function(logits, labels)
            total = tf.reduce_sum(values * upstream)
        return values, tape.gradient(total, logits)

    def reference(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        return tf.gather(tf.nn.log_softmax(x), y, batch_dims=len(shape) - 1)

    expected_values, expected_gradient = value_and_gradient(reference)
    traced = tf.function(
        lambda x, y: log_softmax_at(x, y),
        input_signature=[tf.TensorSpec([None] * len(shape), tf.float32),
                         tf.TensorSpec([None] * (len(shape) - 1), tf.int32)],
    )
    for function in (log_softmax_at, traced):
        values, gradient = value_and_gradient(function)
        np.testing.assert_allclose(values.numpy(), expected_values.numpy(), atol=1e-5)
        np.testing.assert_allclose(gradient.numpy(), expected_gradient.numpy(), atol=1e-5)


def test_masked_loss_ignores_padding_and_smooths() -> None:
    logits = tf.math.log(tf.constant([[[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]]]))
    outputs = DecoderOutputs(logits=logits, attention=tf.zeros([1, 2, 3]), gate=None,
                             source_ids=tf.constant([[5, 6, 7]]))
    targets = tf.constant([[1, 0]])
    _losses, mask = token_losses(outputs, targets, vocab_size=4)
    assert mask.numpy().tolist() == [[1.0, 0.0]]
    assert float(masked_mean_loss(outputs, targets, 4)) == pytest.approx(-np.log(0.1), rel=1e-5)
    smoothed = float(masked_mean_loss(outputs, targets, 4, label_smoothing=0.1))
    expected = 0.9 * -np.log(0.1) + 0.1 * -np.mean(np.log([0.7, 0.1, 0.1, 0.1]))
    assert smoothed == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("kw", [{}, {"copy": True}, {"copy": True, "input_feeding": False}])
def test_loss_from_logits_equals_loss_from_full_distribution(kw: dict[str, object]) -> None:
    """The training loss (gathered from logits) is -log p of the decoder's distribution."""
    model = make(**kw)
    source = np.array([[5, 31, 7, 31, 0], [8, 9, 32, 10, 11]])
    target_in = np.array([[1, 5, 31, 7], [1, 32, 8, 4]])
    target_out = np.array([[5, 31, 7, 2], [32, 8, 4, 0]])
    if not kw.get("copy"):  # without copying, unknown words are <unk> (3)
        source, target_in, target_out = (np.where(a >= 30, 3, a)
                                          for a in (source, target_in, target_out))
    full = model((source, target_in)).numpy()
    expected = -np.take_along_axis(full, target_out[..., None], axis=-1)[..., 0]
    expected[target_out == 0] = 0.0
    outputs = model.teacher_forcing(source, target_in)
    losses, _ = token_losses(outputs, target_out, model.config.vocab_size)
    np.testing.assert_allclose(losses.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_copy_label_smoothing_does_not_depend_on_source_padding() -> None:
    """Smoothing used to average over source columns: 40 extra pads changed the loss."""
    model = make(copy=True)
    source = np.array([[5, 31, 7, 8]])
    padded = np.pad(source, [(0, 0), (0, 40)])
    target_in, target_out = np.array([[1, 5, 31]]), np.array([[5, 31, 2]])
    losses = [
        float(masked_mean_loss(model.teacher_forcing(s, target_in), target_out, 30,
                               label_smoothing=0.1))
        for s in (source, padded)
    ]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_copy_columns_without_a_source_word_are_impossible() -> None:
    """Padding, in-vocabulary words and repeats have no copy column: -inf, even at high
    temperature no sampler can pick them (they used to get log(1e-9))."""
    model = make(copy=True)
    source = np.array([[5, 31, 7, 31, 0, 0]])
    state, context = model.encode(source)
    log_probs, _, _ = model.decode_step(tf.constant([1]), state, context)
    copy_part = log_probs.numpy()[0, 30:]
    assert np.isfinite(copy_part[1])  # the first occurrence of the unknown word
    assert np.all(np.isneginf(np.delete(copy_part, 1)))
    hot = tf.random.categorical(log_probs / 5.0, 2000, seed=1).numpy()
    assert not np.isin(hot, [30, 32, 33, 34, 35]).any()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"units": 7}, "units must be even"),
        ({"cell": "rnn"}, "cell must be one of"),
        ({"vocab_size": 2}, "vocab_size"),
        ({"attention": "luong"}, "unknown attention"),
    ],
)
def test_invalid_configs_are_refused(kw: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"vocab_size": 30, "embedding_dim": 8, "units": 8, **kw}
    with pytest.raises(ValueError, match=message):
        Seq2Seq(ModelConfig(**settings))  # type: ignore[arg-type]


def test_coverage_loss_is_zero_without_overlap_and_counts_overlap() -> None:
    disjoint = tf.constant([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    assert np.allclose(coverage_losses(disjoint).numpy(), 0.0)
    repeated = tf.constant([[[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]])
    np.testing.assert_allclose(coverage_losses(repeated).numpy(), [[0.0, 1.0, 0.0]], atol=1e-6)


def test_coverage_changes_attention_and_is_carried_in_the_state() -> None:
    model = make(coverage=True)
    for weight in model.scorer.weights:  # make coverage matter at initialisation
        if "coverage" in weight.path:
            weight.assign(np.full(weight.shape, -5.0, np.float32))
    source = np.array([[5, 6, 7, 8]])
    state, context = model.encode(source)
    assert np.allclose(state["coverage"].numpy(), 0.0)
    _, state, first = model.decode_step(tf.constant([1]), state, context)
    np.testing.assert_allclose(state["coverage"].numpy(), first.numpy(), atol=1e-6)
    _, state, second = model.decode_step(tf.constant([5]), state, context)
    np.testing.assert_allclose(state["coverage"].numpy(), (first + second).numpy(), atol=1e-6)
    # coverage steers attention away from covered positions: the same step attends less to a
    # position once it is covered (comparing step 2 with step 1 instead would mix in the
    # change of query, which at initialisation is as large as the coverage effect)
    top = int(np.argmax(first.numpy()[0]))
    covered = {**state, "coverage": tf.one_hot([top], 4)}
    uncovered = {**state, "coverage": tf.zeros_like(state["coverage"])}
    _, _, with_coverage = model.decode_step(tf.constant([5]), covered, context)
    _, _, without = model.decode_step(tf.constant([5]), uncovered, context)
    assert with_coverage.numpy()[0, top] < 0.5 * without.numpy()[0, top]


@pytest.mark.parametrize("kw", [{"copy": True}, {"coverage": True}])
def test_no_attention_refuses_copy_and_coverage(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="attention=none cannot have copy"):
        make(attention="none", **kw)


def test_no_attention_weights_are_uniform_over_real_tokens() -> None:
    model = make(attention="none")
    state, context = model.encode(np.array([[5, 6, 0, 0], [5, 6, 7, 8]]))
    _, _, weights = model.decode_step(tf.constant([1, 1]), state, context)
    np.testing.assert_allclose(weights.numpy(), [[0.5, 0.5, 0, 0], [0.25] * 4], atol=1e-6)


def test_peek_makes_the_summary_part_of_every_step() -> None:
    """With peek, changing the summary alone (same initial state) changes later steps."""
    model = make(attention="none", peek=True, input_feeding=False)
    state, context = model.encode(np.array([[5, 6, 7]]))
    moved = {**context, "summary": context["summary"] + 1.0}
    first, _, _ = model.decode_step(tf.constant([1]), state, context)
    second, _, _ = model.decode_step(tf.constant([1]), state, moved)
    assert np.abs(first.numpy() - second.numpy()).max() > 1e-4
