"""The model's output distribution, built from logits (and, with copying, attention).

One definition serves both uses: `log_probabilities` builds the whole distribution over
V' = vocabulary (+ source positions with copying) for decoding, and `target_log_probs`
computes only the probability of given target ids for the training loss, from the same
formula, without materialising a [B,T,V'] tensor.

Pointer-generator mixture (See et al. 2017): p(w) = g * softmax(logits)[w]
+ (1 - g) * sum of attention over source positions holding w. A source word outside the
vocabulary has the extended id `vocab_size + j` (j = its first position, see
`nlp.generation.codec`). Extended columns that no source word maps to (padding, repeated or
in-vocabulary words) have probability zero and log-probability -inf, so no sampler can ever
pick them.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from nlp.tokenizers.specials import UNK_ID

# Keeps log() finite where the mixture underflows; the same constant in both paths.
EPSILON = 1e-9


@dataclass
class DecoderOutputs:
    """What the decoder computes for one step ([B, ...]) or a whole target ([B, T, ...])."""

    logits: tf.Tensor  # [..., V] float32
    attention: tf.Tensor  # [..., S]
    gate: tf.Tensor | None  # [..., 1] float32: probability of generating (copy models)
    source_ids: tf.Tensor  # [B, S] (extended ids with copying)


def _copyable(source_ids: tf.Tensor) -> tf.Tensor:
    """Source positions whose word can be copied: real words, not pad/bos/eos/unk."""
    return source_ids > UNK_ID


def _per_step(source: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """[B,S] -> broadcastable to attention of shape [B,S] or [B,T,S]."""
    return source if like.shape.rank == 2 else source[:, None, :]


def log_probabilities(outputs: DecoderOutputs, vocab_size: int) -> tf.Tensor:
    """log p over V (or V + S with copying): [..., V'] float32."""
    if outputs.gate is None:
        return tf.nn.log_softmax(outputs.logits)
    source_ids, gate = outputs.source_ids, outputs.gate
    weights = tf.cast(outputs.attention, tf.float32)
    copy_mass = weights * (1.0 - gate) * tf.cast(
        _per_step(_copyable(source_ids), weights), tf.float32
    )
    oov = _per_step(source_ids >= vocab_size, weights)
    # copy mass of in-vocabulary words, added to their vocabulary column
    to_vocab = _scatter_to_vocab(
        tf.where(oov, 0.0, copy_mass),
        _per_step(tf.where(source_ids < vocab_size, source_ids, 0), weights),
        vocab_size,
    )
    # copy mass of out-of-vocabulary words, summed on the column of their first position
    positions = tf.range(tf.shape(source_ids)[1])
    extended = _per_step(tf.where(source_ids >= vocab_size, source_ids - vocab_size, -1), weights)
    same_word = tf.cast(tf.equal(extended[..., :, None], positions), tf.float32)  # [.., S, S]
    to_source = tf.reduce_sum(tf.where(oov, copy_mass, 0.0)[..., :, None] * same_word, axis=-2)
    first_position = tf.equal(source_ids - vocab_size, positions[None, :])  # [B,S]
    vocab_part = tf.math.log(tf.nn.softmax(outputs.logits) * gate + to_vocab + EPSILON)
    source_part = tf.where(
        _per_step(first_position, weights), tf.math.log(to_source + EPSILON), -float("inf")
    )
    return tf.concat([vocab_part, source_part], axis=-1)


def _scatter_to_vocab(copy_mass: tf.Tensor, ids: tf.Tensor, vocab_size: int) -> tf.Tensor:
    """Sum copy mass [..., S] into vocabulary columns given by ids [..., S]: [..., V]."""
    flat_mass = tf.reshape(copy_mass, [-1, tf.shape(copy_mass)[-1]])
    flat_ids = tf.reshape(tf.broadcast_to(ids, tf.shape(copy_mass)), tf.shape(flat_mass))
    rows = tf.shape(flat_mass)[0]
    row_ids = tf.tile(tf.range(rows)[:, None], [1, tf.shape(flat_mass)[1]])
    scattered = tf.scatter_nd(
        tf.stack([row_ids, flat_ids], axis=-1), flat_mass, tf.stack([rows, vocab_size])
    )
    return tf.reshape(scattered, tf.concat([tf.shape(copy_mass)[:-1], [vocab_size]], axis=0))


def target_log_probs(outputs: DecoderOutputs, targets: tf.Tensor, vocab_size: int, *,
                     xla_clusters: bool = True) -> tf.Tensor:
    """log p(target) [B,T] for target ids [B,T]: the loss path, from the logits directly.
    `xla_clusters=False` keeps XLA out of the graph (see `log_softmax_at`)."""
    targets = tf.cast(targets, tf.int32)
    in_vocab = targets < vocab_size
    log_softmax = log_softmax_at(outputs.logits, tf.where(in_vocab, targets, 0),
                                 xla_clusters=xla_clusters)
    if outputs.gate is None:
        return log_softmax
    gate = outputs.gate[..., 0]
    weights = tf.cast(outputs.attention, tf.float32)
    source_ids = outputs.source_ids[:, None, :]
    hits = tf.equal(source_ids, targets[..., None]) & _copyable(source_ids)  # [B,T,S]
    copied = tf.reduce_sum(weights * tf.cast(hits, tf.float32), axis=-1) * (1.0 - gate)
    generated = tf.where(in_vocab, tf.exp(log_softmax) * gate, 0.0)
    return tf.math.log(generated + copied + EPSILON)


def log_softmax_at(logits: tf.Tensor, labels: tf.Tensor, *, xla_clusters: bool = True
                   ) -> tf.Tensor:
    """log softmax(logits)[label] [...] for logits [..., V] and labels [...]: the loss's one
    pass over the [B*T, V] logits, with its gradient written out.

    Why not `tf.nn.sparse_softmax_cross_entropy_with_logits`: its kernel makes several passes
    over the logits and stores the whole softmax for the backward pass, which then multiplies
    it by the upstream gradient in one more pass. Here the forward pass keeps only the
    logsumexp of each row, and the backward pass recomputes exp(logits - logsumexp) and
    scales it in one fused XLA kernel: the logits are read twice instead of about five times,
    and at vocabulary width they are the step's largest tensor. XLA compiles each of the two
    kernels once per shape of the logits (a fraction of a second; bucketing makes a few dozen
    shapes). Without `xla_clusters` (a graph for another runtime: TensorFlow Serving refuses
    XLA clusters on a CPU unless started with `--xla_cpu_compilation_enabled`) it takes
    TensorFlow's plain log softmax, for inference only.
    """
    rows = tf.reshape(logits, [-1, tf.shape(logits)[-1]])
    flat_labels = tf.reshape(labels, [-1])
    if not xla_clusters:
        plain = tf.gather(tf.nn.log_softmax(rows), flat_labels, batch_dims=1)
        return tf.reshape(plain, tf.shape(labels))

    @tf.custom_gradient
    def gathered(rows: tf.Tensor):  # type: ignore[no-untyped-def]
        values, logsumexp = _log_softmax_at_forward(rows, flat_labels)

        def grad(upstream: tf.Tensor) -> tf.Tensor:
            return _log_softmax_at_backward(rows, flat_labels, logsumexp, upstream)

        return values, grad

    return tf.reshape(gathered(rows), tf.shape(labels))


@tf.function(jit_compile=True)
def _log_softmax_at_forward(rows: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    logsumexp = tf.reduce_logsumexp(rows, axis=-1)
    return tf.gather(rows, labels, batch_dims=1) - logsumexp, logsumexp


@tf.function(jit_compile=True)
def _log_softmax_at_backward(
    rows: tf.Tensor, labels: tf.Tensor, logsumexp: tf.Tensor, upstream: tf.Tensor
) -> tf.Tensor:
    """d/d rows of sum(upstream * log softmax(rows)[label]) = upstream * (one-hot - softmax)."""
    gradient = -upstream[:, None] * tf.exp(rows - logsumexp[:, None])
    positions = tf.stack([tf.range(tf.shape(labels)[0]), labels], axis=1)
    return tf.tensor_scatter_nd_add(gradient, positions, upstream)


def mean_negative_log_softmax(logits: tf.Tensor) -> tf.Tensor:
    """-mean_v log softmax(logits)_v [...]: the label-smoothing term, over the vocabulary only.

    With copying it is taken on the generator's vocabulary distribution, so it does not
    depend on how much padding the source batch has (it used to average over source columns).
    """
    # cross-entropy against the uniform distribution, in TensorFlow's fused kernel (no preset
    # smooths labels, so this pass over the logits has not been moved into `log_softmax_at`)
    uniform = tf.fill(tf.shape(logits), 1.0 / tf.cast(tf.shape(logits)[-1], logits.dtype))
    return tf.nn.softmax_cross_entropy_with_logits(labels=uniform, logits=logits)
