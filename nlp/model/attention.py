"""Attention scores: Luong dot and general, Bahdanau additive.

Each scorer splits its work in two: `keys(memory)` runs once per source sentence (in
`encode`), `scores(query, keys)` runs once per output token (query [B,H]) or, when the
decoder has no input feeding, once for the whole target (query [B,T,H], scores [B,T,S]).
Precomputing the key projection is what makes general and additive attention cheap inside
the decoding loop.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from nlp.model.recurrence import product


class AttentionScorer(keras.layers.Layer):
    """Base class: subclasses define how a decoder query is compared with the source.

    With coverage (See et al. 2017), the attention already paid to each source position
    (the running sum of past weights, [B,S]) is a feature of the score, so the model can
    learn not to attend to the same words again: inside the tanh for additive attention
    (`w_c * c_i`, as in the paper), and as a learned linear term
    `w_c * c_i` added to the Luong scores, which have no tanh to put it in.
    """

    coverage_weight: keras.Variable | None = None

    def build_coverage(self, width: int) -> None:
        self.coverage_weight = self.add_weight(
            shape=(width,), name="coverage_weight", initializer="random_normal"
        )

    def keys(self, memory: tf.Tensor, operands: tf.DType | None = None) -> tf.Tensor:
        """The source side of the scores, once per source; `operands`: the projection's
        operand dtype (`recurrence.product`, `train.precision`), where there is one."""
        raise NotImplementedError

    def scores(
        self, query: tf.Tensor, keys: tf.Tensor, coverage: tf.Tensor | None = None
    ) -> tf.Tensor:
        raw = self._scores(query, keys)
        if coverage is None or self.coverage_weight is None:
            return raw
        weight = tf.cast(tf.convert_to_tensor(self.coverage_weight), raw.dtype)
        return raw + tf.cast(coverage, raw.dtype) * weight[0]

    def _scores(self, query: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError


class DotScorer(AttentionScorer):
    """Luong dot: score = h . m (the memory and the query must have the same width)."""

    def build_for(self, memory_dim: int, query_dim: int) -> None:
        if memory_dim != query_dim:
            raise ValueError(f"dot attention needs equal widths, got {memory_dim} and {query_dim}")
        self.built = True

    def keys(self, memory: tf.Tensor, operands: tf.DType | None = None) -> tf.Tensor:
        return memory

    def _scores(self, query: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
        return _dot(query, keys)


class GeneralScorer(AttentionScorer):
    """Luong general: score = h W m, with W m precomputed once per source."""

    def build_for(self, memory_dim: int, query_dim: int) -> None:
        self.project = keras.layers.Dense(query_dim, use_bias=False, name="key_projection")
        self.project.build((None, None, memory_dim))
        self.built = True

    def keys(self, memory: tf.Tensor, operands: tf.DType | None = None) -> tf.Tensor:
        return product(memory, self.project.kernel, operands)

    def _scores(self, query: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
        return _dot(query, keys)


class AdditiveScorer(AttentionScorer):
    """Bahdanau additive: score = v . tanh(W1 m + W2 h), with W1 m precomputed."""

    def build_for(self, memory_dim: int, query_dim: int) -> None:
        self.memory_layer = keras.layers.Dense(query_dim, use_bias=False, name="memory_layer")
        self.query_layer = keras.layers.Dense(query_dim, use_bias=True, name="query_layer")
        self.memory_layer.build((None, None, memory_dim))
        self.query_layer.build((None, query_dim))
        self.v = self.add_weight(shape=(query_dim,), name="v", initializer="glorot_uniform")
        self.built = True

    def keys(self, memory: tf.Tensor, operands: tf.DType | None = None) -> tf.Tensor:
        return product(memory, self.memory_layer.kernel, operands)

    def scores(
        self, query: tf.Tensor, keys: tf.Tensor, coverage: tf.Tensor | None = None
    ) -> tf.Tensor:
        projected = self.query_layer(query)[..., None, :]  # [B,(T,)1,H]
        if query.shape.rank == 3:
            keys = keys[:, None]  # [B,1,S,H]
        hidden = keys + projected
        if coverage is not None and self.coverage_weight is not None:
            weight = tf.cast(tf.convert_to_tensor(self.coverage_weight), hidden.dtype)
            hidden += tf.cast(coverage, hidden.dtype)[..., None] * weight
        hidden = tf.tanh(hidden)
        return tf.einsum("b...sh,h->b...s", hidden, tf.cast(tf.convert_to_tensor(self.v),
                                                            hidden.dtype))


def _dot(query: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
    """query . key for every source position: [B,H] x [B,S,H] -> [B,S], [B,T,H] -> [B,T,S].

    One query per row is a batch of [1,H] x [H,S] products rather than a multiply-and-sum:
    the latter builds a [B,S,H] product per decoder step, and in training its gradient
    builds several more, which on a 2-core CPU made the decoder loop of a headline model
    (100 source tokens) about 20% slower (`benchmarks/train_throughput.py`).
    """
    if query.shape.rank == 2:
        return tf.matmul(query[:, None, :], keys, transpose_b=True)[:, 0]
    return tf.matmul(query, keys, transpose_b=True)


NO_ATTENTION = "none"  # model.attention for the basic encoder-decoder (no scorer at all)

SCORERS: dict[str, type[AttentionScorer]] = {
    "dot": DotScorer,
    "general": GeneralScorer,
    "bahdanau": AdditiveScorer,
}


def make_scorer(
    name: str, memory_dim: int, query_dim: int, coverage: bool = False
) -> AttentionScorer:
    """Build the scorer named in the config, with its weights created up front."""
    if name not in SCORERS:
        choices = [*sorted(SCORERS), NO_ATTENTION]
        raise ValueError(f"unknown attention {name!r}; choose one of {choices}")
    scorer = SCORERS[name](name=f"attention_{name}")
    scorer.build_for(memory_dim, query_dim)  # type: ignore[attr-defined]
    if coverage:
        scorer.build_coverage(query_dim if name == "bahdanau" else 1)
    return scorer


def attend(
    scorer: AttentionScorer,
    query: tf.Tensor,
    keys: tf.Tensor,
    memory: tf.Tensor,
    mask: tf.Tensor,
    coverage: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Masked softmax attention: (context [B,H], weights [B,S]), or [B,T,H] and [B,T,S]
    for a query [B,T,H]. `coverage` [B,S]: attention paid so far (coverage models)."""
    scores = scorer.scores(query, keys, coverage)
    if query.shape.rank == 3:
        mask = mask[:, None, :]
    scores = tf.where(mask, scores, tf.fill(tf.shape(scores), scores.dtype.min))
    weights = tf.nn.softmax(scores, axis=-1)
    if query.shape.rank == 2:  # see _dot
        context = tf.matmul(weights[:, None, :], memory)[:, 0]
    else:
        context = tf.matmul(weights, memory)
    return context, weights
