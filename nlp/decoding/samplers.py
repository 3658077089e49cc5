"""Token pickers: given log-probabilities [rows, V'], choose one token per row.

Kept apart from the search strategies (as in OpenNMT-tf) so the same width-1 search serves
both greedy decoding (best token) and sampling (random token).
"""

from __future__ import annotations

from typing import Protocol

import tensorflow as tf

from nlp.decoding.constraints import NEG_INF
from nlp.decoding.cutoffs import kept_mask
from nlp.decoding.params import DecodeParams
from nlp.decoding.row_buckets import ROW_BUCKETS


class Sampler(Protocol):
    random: bool  # True if `pick` reads `params.draws` (the decoder then fills them)

    def pick(self, log_probs: tf.Tensor, step: tf.Tensor, params: DecodeParams) -> tf.Tensor:
        """Return int32 token ids [rows]."""
        ...


class BestSampler:
    """The most probable token (ties go to the lowest id, so results are deterministic)."""

    random = False

    def pick(self, log_probs: tf.Tensor, step: tf.Tensor, params: DecodeParams) -> tf.Tensor:
        return tf.argmax(log_probs, axis=-1, output_type=tf.int32)


class RandomSampler:
    """A random token after temperature scaling and top-k / top-p (nucleus) filtering.

    The randomness comes in from outside: `params.draws[row, step]` is one uniform number in
    [0, 1) per row and step, turned into a token by inverting the row's cumulative
    distribution. The decoder derives each input's draws from the seed and that input alone
    (see `nlp.decoding.draws`), so a seeded sample does not depend on which other inputs
    share its batch, while the graph holds no random-generator state.

    The filters' floors come from `nlp.decoding.cutoffs`, a search that needs no sorted row
    and whose passes only pay off fused. So by default (`xla_clusters`) the whole pick
    runs as XLA clusters even inside the plain graph: two, one per half of the rows, which
    the graph executor runs at once on its two inter-op threads (XLA's own loops use one
    core). XLA compiles per shape (a fraction of a second each), and a server's batches
    come in every size, so the rows are padded to the next of `ROW_BUCKETS` (a dozen shapes
    up to 256 rows; `nlp.decoding.row_buckets` also gives the batches a warm-up decodes to
    compile them all before serving). A graph that other runtimes read (the exported
    SavedModel: TensorFlow Serving runs XLA on a CPU only when asked to) runs the same pick
    unfused.
    """

    random = True

    def __init__(self, *, xla_clusters: bool = True) -> None:
        self.xla_clusters = xla_clusters

    def pick(self, log_probs: tf.Tensor, step: tf.Tensor, params: DecodeParams) -> tf.Tensor:
        draw = tf.gather(params.draws, step, axis=1)
        filters = (params.temperature, params.top_k, params.top_p)
        if not self.xla_clusters:
            return _pick(log_probs, draw, *filters)
        rows = tf.shape(log_probs)[0]
        buckets = tf.constant(ROW_BUCKETS)
        size = tf.reduce_min(tf.where(buckets >= rows, buckets, tf.int32.max))
        size = tf.where(size == tf.int32.max, rows, size)  # more rows than any bucket
        log_probs_padded = tf.pad(log_probs, [[0, size - rows], [0, 0]])  # uniform rows
        draw = tf.pad(draw, [[0, size - rows]])
        half = size // 2
        picked = tf.concat([_compiled_pick(log_probs_padded[:half], draw[:half], *filters),
                            _compiled_pick(log_probs_padded[half:], draw[half:], *filters)],
                           axis=0)
        return tf.ensure_shape(picked[:rows], log_probs.shape[:1])


def _pick(log_probs: tf.Tensor, draw: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor,
          top_p: tf.Tensor) -> tf.Tensor:
    """Token ids [rows]: each row's `draw` [rows] inverts its filtered distribution."""
    logits = log_probs / temperature
    width = tf.shape(logits)[-1]
    probs = tf.nn.softmax(tf.where(kept_mask(logits, top_k, top_p), logits, NEG_INF))
    cumulative = tf.cumsum(probs, axis=-1)
    target = draw * cumulative[:, -1]
    picked = tf.reduce_sum(tf.cast(cumulative <= target[:, None], tf.int32), axis=-1)
    # Rounding can put `target` at the total; never step past the last token with mass.
    last = tf.reduce_max(tf.where(probs > 0, tf.range(width)[None, :], 0), axis=-1)
    return tf.minimum(picked, last)


# XLA compiles it once per row count; the traced graph is shared.
_compiled_pick = tf.function(_pick, jit_compile=True, reduce_retracing=True)
