"""Masked cross-entropy with optional label smoothing, computed from the decoder's logits.

The loss never builds a [B,T,V'] log-probability tensor: it takes log p(target) from the
logits (and, with copying, the attention) via `nlp.model.distribution.target_log_probs`,
the same formula decoding uses. Label smoothing spreads its mass over the vocabulary part
only (the generator's distribution), so it does not depend on source padding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from nlp.model import recurrence
from nlp.model.distribution import DecoderOutputs, mean_negative_log_softmax, target_log_probs
from nlp.tokenizers.specials import PAD_ID


def token_losses(
    outputs: DecoderOutputs, targets: tf.Tensor, vocab_size: int, label_smoothing: float = 0.0
) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-token loss [B,T] (zero on padding) and the padding mask as float [B,T]."""
    targets = tf.cast(targets, tf.int32)
    mask = tf.cast(tf.not_equal(targets, PAD_ID), tf.float32)
    nll = -target_log_probs(outputs, targets, vocab_size)
    if label_smoothing > 0.0:
        smooth = mean_negative_log_softmax(outputs.logits)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    return nll * mask, mask


def coverage_losses(attention: tf.Tensor) -> tf.Tensor:
    """See et al. (2017): sum_i min(a_t,i, c_t,i) per step [B,T], where the coverage c_t is
    the attention paid before step t. Zero when no two steps attend to the same position."""
    attention = tf.cast(attention, tf.float32)
    coverage = tf.cumsum(attention, axis=1, exclusive=True)
    return tf.reduce_sum(tf.minimum(attention, coverage), axis=-1)


def masked_mean_loss(
    outputs: DecoderOutputs,
    targets: tf.Tensor,
    vocab_size: int,
    label_smoothing: float = 0.0,
    coverage_weight: float = 0.0,
    token_weights: tf.Tensor | None = None,
) -> tf.Tensor:
    """Mean training loss per real (non-padding) target token (+ weighted coverage loss);
    `token_weights` [V]: each target token's loss times its word's weight."""
    losses, mask = token_losses(outputs, targets, vocab_size, label_smoothing)
    if token_weights is not None:
        losses = weighted(losses, targets, token_weights)
    if coverage_weight:
        losses += coverage_weight * coverage_losses(outputs.attention) * mask
    return tf.reduce_sum(losses) / tf.maximum(tf.reduce_sum(mask), 1.0)


def weighted(losses: tf.Tensor, targets: tf.Tensor, token_weights: tf.Tensor) -> tf.Tensor:
    """Per-token losses [B,T] times the weight [V] of each target token's word."""
    return losses * tf.gather(token_weights, tf.cast(targets, tf.int32))


def log_uniform_log_probs(ids: tf.Tensor, vocab_size: int) -> tf.Tensor:
    """log Q(id) of the log-uniform (Zipfian) distribution over ids 0..V-1:
    Q(k) = ln((k + 2) / (k + 1)) / ln(V + 1), which a vocabulary ordered by frequency (as
    `nlp.tokenizers.vocab` orders it) roughly follows."""
    k = tf.cast(ids, tf.float32)
    return tf.math.log(tf.math.log1p(1.0 / (k + 1.0))) - tf.math.log(
        tf.math.log(float(vocab_size) + 1.0))


def sample_log_uniform(count: int, vocab_size: int, seed: tf.Tensor) -> tf.Tensor:
    """`count` ids drawn with replacement from `log_uniform_log_probs`, by a stateless draw
    (`seed`: shape [2]) so a resumed run draws what the uninterrupted one did. Inverse CDF:
    id = floor(exp(u ln(V + 1))) - 1 for u uniform in [0, 1)."""
    u = tf.random.stateless_uniform([count], seed=seed, dtype=tf.float32)
    ids = tf.cast(tf.floor(tf.exp(u * tf.math.log(float(vocab_size) + 1.0))), tf.int32) - 1
    return tf.clip_by_value(ids, 0, vocab_size - 1)


class SampledLogits(NamedTuple):
    """A sampled softmax's columns for each of N = B*T positions: column 0 the position's
    target, then the batch's sampled ids (`sampled_logits`)."""

    corrected: tf.Tensor  # [N, 1+S] the logits less ln(S Q(id)): a softmax over a row
    #                        approximates the full softmax's over those ids
    raw: tf.Tensor  # [N, 1+S] the model's own logits (what its argmax reads)
    ids: tf.Tensor  # [N, 1+S] the word each column scores


def sampled_logits(
    features: tf.Tensor,
    kernel: tf.Tensor,
    bias: tf.Tensor,
    targets: tf.Tensor,
    sampled: tf.Tensor,
    products: tf.DType | str | None = None,
) -> SampledLogits:
    """Sampled softmax (Jean et al. 2015): the logits of each position over its target and
    the `sampled` ids [S] (one draw shared by the batch, from `sample_log_uniform`),
    corrected by -ln(S Q(id)), so that the loss's gradient (`sampled_nll`) approaches the
    full softmax's as S grows, and as the model gives them; a sampled id equal to the
    position's target (an "accidental hit") gets -1e9 in both.

    Why: the output projection onto the whole vocabulary, forward and backward, is the
    largest share of a chat model's training step (10,000 words x 256 units per target
    token); S of them cost S/V of it. Only training uses it: validation, scoring and
    decoding keep the exact softmax (`token_losses`)."""
    count = tf.cast(tf.shape(sampled)[0], tf.float32)
    vocab_size = int(kernel.shape[1])
    flat = tf.reshape(features, [-1, tf.shape(features)[-1]])  # [N, H]
    labels = tf.reshape(tf.cast(targets, tf.int32), [-1])  # [N]
    operands = tf.as_dtype(products) if products is not None else None
    true_columns = tf.gather(kernel, labels, axis=1)  # [H, N]
    true_logits = tf.reduce_sum(
        tf.cast(flat, tf.float32) * tf.transpose(tf.cast(true_columns, tf.float32)), axis=-1
    ) + tf.gather(tf.cast(bias, tf.float32), labels)  # [N]
    others = tf.cast(recurrence.product(
        flat, tf.gather(kernel, sampled, axis=1), operands), tf.float32)
    others += tf.gather(tf.cast(bias, tf.float32), sampled)[None, :]  # [N, S]
    hits = tf.equal(labels[:, None], sampled[None, :])
    true_corrected = true_logits - (tf.math.log(count) + log_uniform_log_probs(labels, vocab_size))
    others_corrected = others - (
        tf.math.log(count) + log_uniform_log_probs(sampled, vocab_size))[None, :]
    others_corrected = tf.where(hits, tf.constant(-1e9, tf.float32), others_corrected)
    corrected = tf.concat([true_corrected[:, None], others_corrected], axis=-1)
    # `raw` and `ids` are read only by the unlikelihood loss; in the compiled training step
    # nothing computes them when no loss reads them
    raw = tf.concat([true_logits[:, None], tf.where(hits, -1e9, others)], axis=-1)
    ids = tf.concat(
        [labels[:, None], tf.broadcast_to(sampled[None, :], tf.shape(others))], axis=-1)
    return SampledLogits(corrected, raw, ids)


def sampled_nll(logits: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-token loss [B,T] (zero on padding) from `sampled_logits`' corrected logits
    [N, 1+S], and the padding mask as float [B,T]."""
    targets = tf.cast(targets, tf.int32)
    mask = tf.cast(tf.not_equal(targets, PAD_ID), tf.float32)
    nll = tf.reduce_logsumexp(logits, axis=-1) - logits[:, 0]
    return tf.reshape(nll, tf.shape(targets)) * mask, mask


# what a position predicts, for `overused_unlikelihood` (train.unlikelihood_pick)
UNLIKELIHOOD_PICKS = ("model", "sampled")


def overused_unlikelihood(
    logits: tf.Tensor | SampledLogits,
    targets: tf.Tensor,
    vocab_size: int,
    total: Callable[[tf.Tensor], tf.Tensor] = tf.identity,
    threshold: float = 1e-3,
    pick: str = "model",
) -> tuple[tf.Tensor, tf.Tensor]:
    """Vocabulary unlikelihood (Li et al. 2020, "Don't Say That!", its `kldiv` weighting):
    the summed penalty and the count of penalised positions, for the batch's targets
    [B,T] and each position's logits over the vocabulary [N, V] (N = B*T) or a sampled
    softmax's columns (`SampledLogits`).

    Each position's prediction is the model's argmax (over a sampled softmax's columns: its
    raw logits, which every frequent word is nearly sure to be among). A word the batch's
    predictions use more often than its targets do (share p_model > p_human) weighs
    beta = p_model ln(p_model / p_human) (kept above `threshold`; a word no target holds
    counts as half an occurrence); each position whose prediction is such a word and not its
    own target adds beta * -ln(1 - p), p the prediction's probability (with a sampled
    softmax, the corrected softmax's over every column of that word: the draw repeats
    frequent ids). Why: likelihood alone leaves a chat model's argmax on "i", "'t", "know"
    almost everywhere, the generic replies beam search then finds; this lowers the
    over-predicted words where the reply says something else, by how much they are
    over-predicted. Li et al. count the words of replies decoded during training, over 32
    batches; here the predictions are the teacher-forced argmax of the batch itself, so the
    step needs no decoding and no state (a resumed run computes what the uninterrupted one
    did). `total` sums the word counts over the batch where replicas each hold a part of it
    (an all-reduce). The weights carry no gradient.

    `pick="sampled"` predicts a sampled softmax's argmax over its corrected logits instead,
    which favour the rare ids drawn (under the exact softmax the two are the same): the draw
    is shared by the batch, so one such id wins many positions, counts as over-predicted and
    is pushed down harder than the sampled softmax alone pushes its negatives; p is the
    winning column's own probability (a word drawn n times ties over its n columns, each
    with about 1/n of the word's). It penalises rare words, not generic ones; it is kept
    because the model then learns the likelihood faster and ranks held-out replies better
    (docs/BENCHMARKS.md, "Vocabulary unlikelihood"). The word's probability summed over its
    columns, as `pick="model"` reads it, outweighed the likelihood from the first steps."""
    labels = tf.reshape(tf.cast(targets, tf.int32), [-1])
    mask = tf.cast(tf.not_equal(labels, PAD_ID), tf.float32)
    if pick not in UNLIKELIHOOD_PICKS:
        raise ValueError(f"pick must be one of {', '.join(UNLIKELIHOOD_PICKS)}, got {pick!r}")
    if isinstance(logits, SampledLogits):
        read = logits.raw if pick == "model" else logits.corrected
        column = tf.argmax(read, axis=-1, output_type=tf.int32)  # [N]
        predicted = tf.gather(logits.ids, column, axis=1, batch_dims=1)
        log_probs = tf.nn.log_softmax(logits.corrected, axis=-1)
        if pick == "model":
            same = tf.equal(logits.ids, predicted[:, None])
            chosen = tf.reduce_logsumexp(tf.where(same, log_probs, -1e9), axis=-1)
        else:
            chosen = tf.gather(log_probs, column, axis=1, batch_dims=1)
    else:
        logits = tf.cast(logits, tf.float32)
        predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
        # the argmax's log softmax, without a second [N, V] tensor
        chosen = tf.reduce_max(logits, axis=-1) - tf.reduce_logsumexp(logits, axis=-1)
    tokens = tf.maximum(total(tf.reduce_sum(mask)), 1.0)
    p_model = total(tf.math.unsorted_segment_sum(mask, predicted, vocab_size)) / tokens
    p_human = tf.maximum(
        total(tf.math.unsorted_segment_sum(mask, labels, vocab_size)), 0.5) / tokens
    beta = tf.where(p_model > p_human,
                    p_model * (tf.math.log(tf.maximum(p_model, 1e-9)) - tf.math.log(p_human)),
                    0.0)
    beta = tf.stop_gradient(tf.where(beta > threshold, beta, 0.0))
    weights = tf.gather(beta, predicted) * mask * tf.cast(
        tf.not_equal(predicted, labels), tf.float32)
    penalty = -tf.math.log(tf.maximum(1.0 - tf.exp(chosen), 1e-6))
    return (tf.reduce_sum(weights * penalty),
            tf.reduce_sum(tf.cast(weights > 0, tf.float32)))
