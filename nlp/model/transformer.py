"""The Transformer encoder and decoder (Vaswani et al. 2017) that `model.architecture=transformer`
puts inside the one seq2seq model (`nlp.model.seq2seq.Seq2Seq`) in place of its recurrent
encoder and attention decoder.

Why an option at all: on a CPU the recurrent model's time goes to a loop of small products, one
token at a time, and the Transformer's to a few large ones over every token at once, which a
CPU runs nearer its peak; whether it learns as much in a recipe's minutes is what the option
lets be measured (docs/BENCHMARKS.md).

Why written here and not `keras.layers.MultiHeadAttention`: decoding runs one token a step
through the shared decoder's loop, which carries the model's state as tensors of fixed shape
and reorders their rows between beams; the decoder's keys and values of the tokens written
so far are that state (`Cache`), a buffer of `model.decoder_positions` slots written one slot
a step, which the Keras layer cannot keep. Pre-layer normalisation (Xiong et al. 2020): it
trains without a learning-rate warm-up, which the recipes' schedules do not have. Positions are
sinusoidal (no table to outgrow); padding is masked out of every attention.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from nlp.model import recurrence

# The feed-forward layer's width, in model widths (the paper's 2048 for 512).
FEED_FORWARD = 4
# A masked score: far below any real one, and finite in float16 as in float32.
MASKED = -1e4


def positions(first: tf.Tensor, count: int | tf.Tensor, width: int) -> tf.Tensor:
    """Sinusoidal position vectors [count, width] of positions first .. first+count-1
    (`first` a scalar), or [B, width] of one position each when `first` is [B] and `count` 1."""
    half = width // 2
    rates = tf.exp(-math.log(10000.0) * tf.range(half, dtype=tf.float32) / max(half, 1))
    if first.shape.rank == 1:
        where = tf.cast(first, tf.float32)[:, None]
    else:
        where = tf.cast(first + tf.range(count), tf.float32)[:, None]
    angles = where * rates[None, :]
    table = tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1)
    return tf.pad(table, [[0, 0], [0, width - 2 * half]])


def _heads(x: tf.Tensor, heads: int) -> tf.Tensor:
    """[B, T, D] -> [B, heads, T, D/heads]."""
    shape = tf.shape(x)
    split = tf.reshape(x, tf.stack([shape[0], shape[1], heads, x.shape[-1] // heads]))
    return tf.transpose(split, [0, 2, 1, 3])


def _merge(x: tf.Tensor) -> tf.Tensor:
    """[B, heads, T, D/heads] -> [B, T, D]."""
    shape = tf.shape(x)
    joined = tf.transpose(x, [0, 2, 1, 3])
    return tf.reshape(joined, tf.stack([shape[0], shape[2], x.shape[1] * x.shape[-1]]))


def attention(
    queries: tf.Tensor, keys: tf.Tensor, values: tf.Tensor, allowed: tf.Tensor, heads: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Scaled dot-product attention over `heads` heads: ([B, Tq, D], the weights averaged
    over the heads [B, Tq, Tk]). `allowed`: [B, Tq or 1, Tk] booleans, where a query may
    look."""
    q, k, v = (_heads(x, heads) for x in (queries, keys, values))
    scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(q.shape[-1])
    scores = tf.where(allowed[:, None], scores, tf.cast(MASKED, scores.dtype))
    weights = tf.nn.softmax(scores, axis=-1)
    return _merge(tf.matmul(weights, v)), tf.reduce_mean(weights, axis=1)


class Block(keras.layers.Layer):
    """One pre-norm layer: self-attention, attention to the encoder's memory (a decoder
    layer), and the feed-forward layer, each added to its input.

    `products`: the operand dtype of the products with its kernels (bfloat16 under
    `train.precision`, as the recurrent model's, `nlp.training.precision`); None: the
    compute dtype. The attention's own products (queries by keys, weights by values) stay in
    the compute dtype: they are many small batched products, not the layer's large ones."""

    def __init__(self, units: int, heads: int, dropout: float, *, cross: bool,
                 products: tf.DType | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.units, self.heads, self.cross, self.products = units, heads, cross, products
        self.self_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="self_norm")
        self.self_qkv = keras.layers.Dense(3 * units, name="self_qkv")
        self.self_out = keras.layers.Dense(units, name="self_out")
        if cross:
            self.cross_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="cross_norm")
            self.cross_q = keras.layers.Dense(units, name="cross_q")
            self.cross_kv = keras.layers.Dense(2 * units, name="cross_kv")
            self.cross_out = keras.layers.Dense(units, name="cross_out")
        self.ff_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="ff_norm")
        self.ff_in = keras.layers.Dense(FEED_FORWARD * units, name="ff_in")  # relu: _feed_forward
        self.ff_out = keras.layers.Dense(units, name="ff_out")
        self.drop = keras.layers.Dropout(dropout)

    def build(self, input_shape: object = None) -> None:
        units = self.units
        for norm in (self.self_norm, self.ff_norm):
            norm.build((None, None, units))
        self.self_qkv.build((None, None, units))
        self.self_out.build((None, None, units))
        if self.cross:
            self.cross_norm.build((None, None, units))
            self.cross_q.build((None, None, units))
            self.cross_kv.build((None, None, units))
            self.cross_out.build((None, None, units))
        self.ff_in.build((None, None, units))
        self.ff_out.build((None, None, FEED_FORWARD * units))
        self.built = True

    def memory(self, encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The encoder output's keys and values for this layer's attention to it (computed
        once a source, read at every decoding step)."""
        keys, values = tf.split(self._dense(self.cross_kv, encoded), 2, axis=-1)
        return keys, values

    def sequence(
        self, x: tf.Tensor, allowed: tf.Tensor, memory: tuple[tf.Tensor, tf.Tensor] | None,
        source_allowed: tf.Tensor | None, training: bool,
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        """Every position at once ([B, T, D]): the encoder's layers (`allowed`: padding
        masked) and teacher forcing (`allowed`: causal). Returns the output and, for a
        decoder layer, its attention to the memory [B, T, S]."""
        projected = self._dense(self.self_qkv, self.self_norm(x))
        queries, keys, values = tf.split(projected, 3, axis=-1)
        attended, _ = attention(queries, keys, values, allowed, self.heads)
        x = x + self.drop(self._dense(self.self_out, attended), training=training)
        weights = None
        if memory is not None:
            assert source_allowed is not None
            attended, weights = attention(self._dense(self.cross_q, self.cross_norm(x)), *memory,
                                          source_allowed, self.heads)
            x = x + self.drop(self._dense(self.cross_out, attended), training=training)
        return self._feed_forward(x, training), weights

    def step(
        self, x: tf.Tensor, cache: tuple[tf.Tensor, tf.Tensor], slot: tf.Tensor,
        memory: tuple[tf.Tensor, tf.Tensor], source_allowed: tf.Tensor,
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor], tf.Tensor]:
        """One new position ([B, 1, D]) written at `slot` ([B, P] one-hot) of the cache of
        keys and values ([B, P, D] each), attending to it and every slot before: returns the
        output, the cache with this position's keys and values in their slot, and the
        attention to the memory [B, S]."""
        projected = self._dense(self.self_qkv, self.self_norm(x))
        queries, key, value = tf.split(projected, 3, axis=-1)
        written = slot[:, :, None]
        keys = cache[0] * (1 - written) + written * key
        values = cache[1] * (1 - written) + written * value
        allowed = tf.cast(tf.cumsum(slot, axis=1, reverse=True), tf.bool)[:, None, :]
        attended, _ = attention(queries, keys, values, allowed, self.heads)
        x = x + self._dense(self.self_out, attended)
        attended, weights = attention(self._dense(self.cross_q, self.cross_norm(x)), *memory,
                                      source_allowed, self.heads)
        x = x + self._dense(self.cross_out, attended)
        return self._feed_forward(x, False), (keys, values), weights[:, 0]

    def _feed_forward(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        hidden = tf.nn.relu(self._dense(self.ff_in, self.ff_norm(x)))
        return x + self.drop(self._dense(self.ff_out, hidden), training=training)

    def _dense(self, layer: keras.layers.Dense, x: tf.Tensor) -> tf.Tensor:
        """`layer(x)` (no activation), its product's operands rounded to `products`."""
        if self.products is None:
            return layer(x)
        return recurrence.product(x, layer.kernel, self.products) + tf.cast(layer.bias, x.dtype)
