"""Rules that forbid or favour tokens before a strategy picks one (a log-probability set to
-inf, or a bonus added).

They act on the full [rows, V'] matrix, the costliest tensor of a step, so each rule is a
single broadcast add or one scatter rather than a chain of element-wise ops.
"""

from __future__ import annotations

import tensorflow as tf

from nlp.tokenizers.specials import BOS_ID, EOS_ID, PAD_ID, UNK_ID

NEG_INF = float("-inf")


def forbidden_token_bias(
    width: tf.Tensor, step: tf.Tensor, min_length: tf.Tensor, suppress_unk: tf.Tensor
) -> tf.Tensor:
    """A [V'] row to add to log-probabilities: -inf for PAD and BOS (never valid outputs), for
    UNK when `suppress_unk`, and for EOS while fewer than `min_length` tokens exist."""
    eos_bias = tf.where(step < min_length, NEG_INF, 0.0)
    unk_bias = tf.where(suppress_unk, NEG_INF, 0.0)
    return tf.tensor_scatter_nd_update(
        tf.zeros([width], tf.float32),
        [[PAD_ID], [BOS_ID], [EOS_ID], [UNK_ID]],
        tf.stack([NEG_INF, NEG_INF, eos_bias, unk_bias]),
    )


FIRST_WORD = UNK_ID + 1  # the vocabulary's first word after the special ids


def rarity(width: tf.Tensor, vocabulary: int | tf.Tensor | None = None) -> tf.Tensor:
    """A [V'] row: each word's rarity in [0, 1], log(rank) / log(words) of its rank in the
    `vocabulary` (its size; None: `width`) (0 for the commonest word, 1 for the rarest; ids
    past the vocabulary, a copying model's source words, count as the rarest), and 0 for the
    special ids, the end token included, so ending costs what the commonest word does. A
    copying model's row is wider by its batch's padded source length: scaled by the width,
    a word's rarity, and so a reply, would depend on the other texts of its batch.

    Why the rank and not counted frequencies (See et al. 2019 weigh normalised IDF): the
    vocabulary is stored in frequency order (`nlp.tokenizers.vocab`) and bundles keep no
    counts; under Zipf's law a word's log-frequency falls linearly with its log-rank, so the
    two order and space words alike."""
    ids = tf.range(width)
    size = width if vocabulary is None else tf.cast(vocabulary, ids.dtype)
    words = tf.cast(tf.maximum(size - FIRST_WORD, 2), tf.float32)
    rank = tf.cast(tf.maximum(ids - FIRST_WORD + 1, 1), tf.float32)
    scaled = tf.minimum(tf.math.log(rank) / tf.math.log(words), 1.0)
    return tf.where(ids >= size, 1.0, tf.where(ids >= FIRST_WORD, scaled, 0.0))


def block_repeated_ngrams(
    log_probs: tf.Tensor, history: tf.Tensor, step: tf.Tensor, n: int
) -> tf.Tensor:
    """Forbid every token that would complete an n-gram already present in the row's output.

    `history` [rows, L] holds the tokens generated so far (positions < `step`). For each start
    position i, the window history[i : i+n-1] is compared with the last n-1 tokens; where they
    match, history[i+n-1] is banned. `n` is a Python int: it fixes the graph structure.
    """
    length = tf.shape(history)[1]
    starts = length - n + 1  # candidate start positions 0 .. L-n
    matches = tf.range(starts)[None, :] <= step - n  # the whole n-gram lies before `step`
    for offset in range(n - 1):
        window = history[:, offset : offset + starts]
        recent = tf.gather(history, tf.maximum(step - n + 1 + offset, 0), axis=1)
        matches &= tf.equal(window, recent[:, None])
    banned = history[:, n - 1 :]  # [rows, starts]: the token that would complete each n-gram
    rows = tf.broadcast_to(tf.range(tf.shape(history)[0])[:, None], tf.shape(banned))
    indices = tf.reshape(tf.stack([rows, banned], axis=-1), [-1, 2])
    matches = tf.broadcast_to(matches, tf.shape(banned))
    updates = tf.reshape(tf.where(matches, NEG_INF, float("inf")), [-1])
    return tf.tensor_scatter_nd_min(log_probs, indices, updates)
