"""Training the dual encoder with in-batch negatives, in minutes on a CPU.

Each step takes a batch of (post, reply) pairs; every post is scored against every reply of
the batch (cosine times `scale`), and the loss is the softmax cross-entropy of the true reply
among them: the other pairs' replies are the negatives, for free (Henderson et al. 2017;
Starspace samples its negatives the same way). Batches are drawn at random, not by length,
since batches of similar lengths would make the negatives easy in a way that says nothing
about fit.

In-batch negatives are mostly easy: a random reply is about something else. Given a source
of hard negatives (`hard`: for a training pair, other pairs whose replies are about the same
thing, such as the replies BM25 finds for its post and its conversation's other replies), each
post of a batch brings `hard_negatives` of them, drawn at random from what the source offers,
and every post of the batch is scored against them too (as DPR does, Karpukhin et al. 2020):
the ranker must then tell a reply from a reply on the same topic, which a keyword match
cannot. The source is asked batch by batch, so its cost counts in the time budget and a run
that stops early never mines pairs it does not reach.

A batch may hold the same reply twice ("Thank you .") or the same post twice; a copy of the
true reply, or the reply of the same post, is not a wrong answer, so those cells are left
out of the softmax instead of being pushed down.

Training stops after `epochs` or when `minutes` have passed, whichever comes first, and
prints one line an epoch: the training loss, and with validation pairs their loss and
in-batch Hits@1 (the share of validation posts whose own reply scores highest among the
batch's). The weights kept are those of the epoch with the best validation Hits@1 (the last
epoch's without validation pairs): the embedding tables are large next to a small corpus,
and a later epoch can fit the training pairs better and the held-out ones worse.

Same seed, same data, same number of steps: same weights. The initial weights come from
seeded initializers and the batch order from a seeded NumPy generator, so no global random
state is touched (a process that also trains or serves a chat model keeps its own). Only
the time budget can make two runs differ, by stopping them after different steps.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from nlp.ranking.dual_encoder import (
    DualEncoder,
    DualEncoderConfig,
    DualEncoderNetwork,
    bucket_length,
    pad_ids,
)
from nlp.tokenizers.specials import PAD_ID, UNK_ID

# Logit of a cell left out of the softmax (a duplicate of the true reply): far below any
# scaled cosine, and finite, so no NaN reaches the gradients.
_EXCLUDED = -1e9

# For each of some training rows, the rows whose replies are hard negatives for it.
HardNegatives = Callable[[Sequence[int]], Sequence[Sequence[int]]]


class _Pairs:
    """Pairs as padded arrays at the caps, with their lengths and duplicate keys, so a batch
    is a slice and not a Python loop over token lists."""

    def __init__(self, posts: Sequence[Sequence[int]], replies: Sequence[Sequence[int]],
                 config: DualEncoderConfig, what: str) -> None:
        if len(posts) != len(replies):
            raise ValueError(
                f"{what}: {len(posts)} posts but {len(replies)} replies; they must pair up")
        vocab = config.vocab_size
        self.posts = pad_ids(posts, config.max_post_tokens, True, vocab, config.max_post_tokens)
        self.replies = pad_ids(
            replies, config.max_reply_tokens, False, vocab, config.max_reply_tokens)
        self.post_lengths = np.count_nonzero(self.posts, axis=1)
        self.reply_lengths = np.count_nonzero(self.replies, axis=1)
        self.post_keys = _duplicate_keys(self.posts)
        self.reply_keys = _duplicate_keys(self.replies)

    def __len__(self) -> int:
        return len(self.posts)

    def batch(self, rows: np.ndarray, config: DualEncoderConfig,
              extra: np.ndarray | None = None,
              dropout: np.random.Generator | None = None) -> tuple[tf.Tensor, ...]:
        """The rows' posts, the replies of the rows and then of the `extra` rows (hard
        negatives), cut to their bucketed widths, and the keys of every reply's pair. With a
        `dropout` generator, `config.token_dropout` of the words are read as unknown
        (`drop_tokens`); the keys stay those of the words as written."""
        columns = rows if extra is None or not len(extra) else np.concatenate([rows, extra])
        post_width = bucket_length(int(self.post_lengths[rows].max()), config.max_post_tokens)
        reply_width = bucket_length(
            int(self.reply_lengths[columns].max()), config.max_reply_tokens)
        posts = self.posts[rows, :post_width]
        replies = self.replies[columns, :reply_width]
        if dropout is not None and config.token_dropout > 0:
            posts = drop_tokens(posts, config.token_dropout, dropout)
            replies = drop_tokens(replies, config.token_dropout, dropout)
        return (
            tf.constant(posts),
            tf.constant(replies),
            tf.constant(self.post_keys[columns]),
            tf.constant(self.reply_keys[columns]),
        )


def _hard_rows(rows: np.ndarray, hard: HardNegatives, count: int,
               rng: np.random.Generator) -> np.ndarray:
    """Up to `count` rows drawn (without replacement) from what `hard` offers each of `rows`,
    never the row itself."""
    drawn: list[int] = []
    for row, offered in zip(rows.tolist(), hard(rows.tolist()), strict=True):
        options = sorted({int(r) for r in offered} - {row})
        if options:
            drawn.extend(rng.choice(options, min(count, len(options)), replace=False).tolist())
    return np.asarray(drawn, dtype=np.int64)


def drop_tokens(ids: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """`ids` with each word (not padding) read as unknown with probability `rate`: word
    dropout (Iyyer et al. 2015), so a training pair is not remembered by one rare word, and
    the ranker learns from the rest of the sentence too."""
    dropped = (rng.random(ids.shape) < rate) & (ids != PAD_ID)
    return np.where(dropped, UNK_ID, ids).astype(ids.dtype)


def _duplicate_keys(ids: np.ndarray) -> np.ndarray:
    """One int32 a distinct row: equal rows, equal keys."""
    _, keys = np.unique(ids, axis=0, return_inverse=True)
    return keys.reshape(-1).astype(np.int32)


def _logits(network: DualEncoderNetwork, posts: tf.Tensor, replies: tf.Tensor,
            post_keys: tf.Tensor, reply_keys: tf.Tensor, scale: float) -> tf.Tensor:
    """[B, C] scaled cosines of the B posts with the C >= B replies: the posts' own (column
    i is post i's), then any hard negatives. The keys are those of each reply's pair, the
    first B also the posts'. The cells of a duplicate of the true reply or of the same
    post's other reply are set to `_EXCLUDED`."""
    cosines = tf.matmul(network.encode_posts(posts), network.encode_replies(replies),
                        transpose_b=True)
    rows = tf.shape(posts)[0]
    same = tf.logical_or(
        tf.equal(post_keys[:rows, None], post_keys[None, :]),
        tf.equal(reply_keys[:rows, None], reply_keys[None, :]),
    )
    off_diagonal = tf.logical_not(tf.eye(rows, tf.shape(replies)[0], dtype=tf.bool))
    return tf.where(tf.logical_and(same, off_diagonal), _EXCLUDED, scale * cosines)


def _loss(logits: tf.Tensor) -> tf.Tensor:
    labels = tf.range(tf.shape(logits)[0])
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def _hits(logits: tf.Tensor) -> tf.Tensor:
    """How many rows rank their own reply (the diagonal) first."""
    best = tf.argmax(logits, axis=1, output_type=tf.int32)
    return tf.reduce_sum(tf.cast(tf.equal(best, tf.range(tf.shape(logits)[0])), tf.int32))


def train_dual_encoder(
    posts: Sequence[Sequence[int]],
    replies: Sequence[Sequence[int]],
    config: DualEncoderConfig,
    valid: tuple[Sequence[Sequence[int]], Sequence[Sequence[int]]] | None = None,
    verbose: int = 1,
    hard: HardNegatives | None = None,
    embeddings: tuple[np.ndarray, np.ndarray] | None = None,
) -> DualEncoder:
    """Train a dual encoder on (post, reply) id pairs; `valid`, held-out pairs, is scored
    after every epoch and chooses the epoch whose weights are returned. `hard`, given the
    rows of a batch, offers each the rows (of `posts` / `replies`) whose replies are hard
    negatives for it; `config.hard_negatives` of them a post join its batch. `embeddings`,
    the post and reply tables to start from (`DualEncoderNetwork`); random ones without."""
    config.check()
    train = _Pairs(posts, replies, config, "training pairs")
    if len(train) < 2:
        raise ValueError(
            f"training pairs: need at least 2 (each reply is a negative for the others), "
            f"got {len(train)}")
    held_out = _Pairs(valid[0], valid[1], config, "validation pairs") if valid else None
    network = DualEncoderNetwork(config, embeddings)
    variables = network.trainable_variables
    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
    optimizer.build(variables)  # its slots now, not inside the traced step
    spec = [tf.TensorSpec([None, None], tf.int32)] * 2 + [tf.TensorSpec([None], tf.int32)] * 2

    @tf.function(input_signature=spec, autograph=False)
    def train_step(post_ids: tf.Tensor, reply_ids: tf.Tensor, post_keys: tf.Tensor,
                   reply_keys: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = _loss(_logits(network, post_ids, reply_ids, post_keys, reply_keys,
                                 config.scale))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    @tf.function(input_signature=spec, autograph=False)
    def valid_step(post_ids: tf.Tensor, reply_ids: tf.Tensor, post_keys: tf.Tensor,
                   reply_keys: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        logits = _logits(network, post_ids, reply_ids, post_keys, reply_keys, config.scale)
        return _loss(logits), _hits(logits)

    rng = np.random.default_rng(config.seed)
    # Apart from the batch order's, so hard negatives leave the batches as they were.
    hard_rng = np.random.default_rng([config.seed, 1])
    dropout_rng = np.random.default_rng([config.seed, 2])
    start = time.perf_counter()
    deadline = start + 60.0 * config.minutes
    best_hits, best_weights = -1.0, None
    for epoch in range(1, config.epochs + 1):
        order = rng.permutation(len(train))
        losses = []
        out_of_time = False
        for first in range(0, len(order), config.batch_size):
            rows = order[first : first + config.batch_size]
            if len(rows) < 2:
                continue  # a lone pair has no negative
            extra = (_hard_rows(rows, hard, config.hard_negatives, hard_rng)
                     if hard is not None and config.hard_negatives > 0 else None)
            losses.append(float(train_step(*train.batch(rows, config, extra, dropout_rng))))
            if time.perf_counter() > deadline:
                out_of_time = True
                break
        notes = [f"loss {np.mean(losses):.3f}"]
        if held_out is not None:
            valid_loss, valid_hits = _evaluate(held_out, config, valid_step)
            notes.append(f"valid loss {valid_loss:.3f}")
            notes.append(f"valid in-batch Hits@1 {valid_hits:.3f} (of {config.batch_size})")
            if valid_hits > best_hits:
                best_hits, best_weights = valid_hits, network.get_weights()
        if verbose:
            stop = f" (time budget of {config.minutes:g} min reached)" if out_of_time else ""
            print(f"dual encoder epoch {epoch}/{config.epochs}: {', '.join(notes)}, "
                  f"{time.perf_counter() - start:.0f}s{stop}", file=sys.stdout, flush=True)
        if out_of_time:
            break
    if best_weights is not None:
        network.set_weights(best_weights)
    return DualEncoder(config, network)


def _evaluate(pairs: _Pairs, config: DualEncoderConfig,
              step: tf.types.experimental.PolymorphicFunction) -> tuple[float, float]:
    """Mean loss and in-batch Hits@1 over `pairs` in their given order, in batches of
    `batch_size` (a last batch of one pair is left out: it has no negatives)."""
    total_loss, hits, counted, batches = 0.0, 0, 0, 0
    for first in range(0, len(pairs), config.batch_size):
        rows = np.arange(first, min(first + config.batch_size, len(pairs)))
        if len(rows) < 2:
            continue
        loss, batch_hits = step(*pairs.batch(rows, config))
        total_loss += float(loss)
        hits += int(batch_hits)
        counted += len(rows)
        batches += 1
    if not counted:
        return float("nan"), float("nan")
    return total_loss / batches, hits / counted
