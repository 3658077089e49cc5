"""A dual encoder that scores how well a reply fits a post: Starspace's recipe in Keras.

Starspace (Wu et al. 2017), and ParlAI's agent of that name, rank replies by the cosine of a
bag of embeddings of the post and one of the reply. That is what this is, with a dense layer
on top of each bag: tokens -> embedding -> masked pooling over the tokens (the mean, and with
`pooling="mean_max"` the element-wise maximum as well) -> dense -> L2 normalisation. Posts
and replies have a tower each, since a good reply is not a paraphrase of its post (a question
is answered, not repeated); whether the two towers share one embedding table is an option.

Two kinds (`encoder`, `nlp.util.config.DUAL_ENCODER_KINDS`). "bag" pools the embeddings
themselves: it trains in minutes on two CPU cores and is what the reference retrieval
baselines use, but it cannot tell "a few lines" of cocaine from pick-up lines, nor "dog bites
man" from "man bites dog": it reads topics. "recurrent" runs a bidirectional GRU over the
embeddings and pools its outputs beside the embeddings, so a pooled feature may be a word in
its context (which words came before and after it, in which order), at several times the
training cost a pair.

Padding (`PAD_ID`, 0) is masked out of the pooling, so a padded sequence encodes exactly as
the unpadded one. A post longer than `max_post_tokens` keeps its LAST tokens (a context ends
with the turn being answered); a reply keeps its first `max_reply_tokens`. An id at or above
`vocab_size` (a copy id of the chat model's codec: a word outside the vocabulary) is read as
`UNK_ID`.

On disk (`save` / `load`) a dual encoder is a directory of its own, `dual_encoder.json` (the
`DualEncoderConfig`) and `dual_encoder.weights.h5`; a model bundle keeps it under
`DUAL_ENCODER_DIR`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nlp.tokenizers.specials import PAD_ID, UNK_ID
from nlp.util.config import DUAL_ENCODER_KINDS, RetrievalConfig, dataclass_from_json
from nlp.util.fsutil import atomic_directory

DUAL_ENCODER_DIR = "dual_encoder"
CONFIG_FILE = "dual_encoder.json"
WEIGHTS_FILE = "dual_encoder.weights.h5"
POOLINGS = ("mean", "mean_max")
EMBEDDING_STARTS = ("random", "chat model")

# Sequences are padded to a multiple of this many tokens (at most the cap): batches of
# similar lengths then share shapes, and little compute goes to padding.
LENGTH_STEP = 8
# How many sequences `post_vectors` / `reply_vectors` encode in one call.
ENCODE_BATCH = 1024


@dataclass
class DualEncoderConfig:
    """Everything that defines a dual encoder and how it is trained; saved as
    `dual_encoder.json` next to the weights (it is not part of `ExperimentConfig`: a bundle
    without a dual encoder does not need it, and one with it keeps it beside the weights).

    The defaults of the architecture are the variant that ranked held-out replies best
    within the three-minute budget: mean and max pooling (the max keeps a rare, telling word
    from being averaged away; a mean alone ranked a little worse), one dense layer (a second
    one fitted the training pairs more slowly and ranked worse), separate embedding tables (a
    shared one ranked random distractors as well, but did much worse among a dialogue's
    neighbouring turns, where a candidate may repeat the post's words), batches of 256 (512
    negatives a step were no better for the time they cost), and word dropout (without it,
    the tables fit the training pairs within a few epochs, and a longer budget ranked worse).
    """

    vocab_size: int = 0  # the chat model's vocabulary size; ids at or above it read as unk
    embedding_dim: int = 128
    hidden: int = 256  # size of the dense layers and of the encoded vectors
    max_post_tokens: int = 64  # a longer post keeps its last tokens
    max_reply_tokens: int = 32  # a longer reply keeps its first tokens
    batch_size: int = 256  # pairs a training step; each reply is a negative for the others
    learning_rate: float = 2e-3  # Adam
    scale: float = 20.0  # cosine -> logit factor of the in-batch softmax
    minutes: float = 3.0  # training time budget; training stops at it or after `epochs`
    epochs: int = 10
    seed: int = 1234  # initial weights and batch order
    pooling: str = "mean_max"  # "mean", or "mean_max": the mean and the maximum concatenated
    shared_embedding: bool = False  # one embedding table for posts and replies
    dense_layers: int = 1  # dense layers on the pooled vector (ReLU between them)
    encoder: str = "bag"  # "bag" or "recurrent" (DUAL_ENCODER_KINDS): what is pooled
    recurrent_units: int = 128  # encoder="recurrent": the GRU's units in each direction
    # Hard negatives each post brings to its batch when training is given mined ones (the
    # replies BM25 finds for it, its conversation's other replies); 0: in-batch only. The
    # default is the bundle setting's, which says why
    hard_negatives: int = RetrievalConfig.dual_encoder_hard_negatives
    # Share of the words of a training post or reply read as unknown (word dropout; not at
    # validation or use): the tables are large next to the corpus and fit its pairs within
    # a few epochs, and dropping words keeps them learning what holds beyond those pairs
    token_dropout: float = 0.15
    # Where the embedding tables started (`EMBEDDING_STARTS`): "random", or "chat model",
    # the chat model's tables (`nlp.training.reply_index.train_ranker`); a record of how the
    # weights were made, since loading reads them from the weights file either way
    embeddings_from: str = "random"

    def check(self) -> None:
        """Raise ValueError naming every setting out of range."""
        problems = []
        if self.vocab_size <= UNK_ID:
            problems.append(f"vocab_size must be larger than {UNK_ID}, got {self.vocab_size}")
        for name in ("embedding_dim", "hidden", "max_post_tokens", "max_reply_tokens",
                     "epochs", "dense_layers", "recurrent_units"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if self.batch_size < 2:
            problems.append(
                f"batch_size must be at least 2 (the negatives are the batch's other replies), "
                f"got {self.batch_size}"
            )
        for name in ("learning_rate", "scale", "minutes"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.token_dropout < 1.0:
            problems.append(f"token_dropout must be in [0, 1), got {self.token_dropout}")
        if self.hard_negatives < 0:
            problems.append(f"hard_negatives must not be negative, got {self.hard_negatives}")
        if self.encoder not in DUAL_ENCODER_KINDS:
            problems.append(
                f"encoder must be one of {', '.join(DUAL_ENCODER_KINDS)}, got {self.encoder!r}")
        if self.embeddings_from not in EMBEDDING_STARTS:
            problems.append(f"embeddings_from must be one of {', '.join(EMBEDDING_STARTS)}, "
                            f"got {self.embeddings_from!r}")
        if self.pooling not in POOLINGS:
            problems.append(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if problems:
            raise ValueError("dual encoder config: " + "; ".join(problems))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, origin: str) -> DualEncoderConfig:
        """Parse and check a saved config (`nlp.util.config.dataclass_from_json`, the loader of
        every config file); every failure is a ValueError naming `origin`."""
        config = dataclass_from_json(cls, text, origin)
        try:
            config.check()
        except ValueError as exc:
            raise ValueError(f"{origin}: {exc}") from exc
        return config


def bucket_length(longest: int, cap: int) -> int:
    """The padded width for sequences of at most `longest` tokens: the next multiple of
    `LENGTH_STEP`, never above `cap`, at least 1."""
    return max(1, min(cap, -(-longest // LENGTH_STEP) * LENGTH_STEP))


def clip_ids(ids: Sequence[int], cap: int, keep_last: bool, vocab_size: int) -> list[int]:
    """The ids one sequence is encoded from: padding dropped (so a caller's padding never
    takes the place of real tokens when cutting), ids outside the vocabulary read as unk,
    then cut to `cap` tokens, keeping the last ones or the first ones."""
    kept = []
    for token in ids:
        token = int(token)
        if token < 0:
            raise ValueError(f"token ids must not be negative, got {token}")
        if token != PAD_ID:
            kept.append(token if token < vocab_size else UNK_ID)
    return kept[-cap:] if keep_last else kept[:cap]


def pad_ids(sequences: Sequence[Sequence[int]], cap: int, keep_last: bool,
            vocab_size: int, width: int | None = None) -> np.ndarray:
    """[N, width] int32 ids, left-aligned and padded with `PAD_ID`; the width is the
    bucketed length of the longest sequence unless given. The kept tokens stay in their
    order from column 0 on (the kept last tokens of a post too), padding after them, where
    the recurrent tower's masking expects it."""
    clipped = [clip_ids(ids, cap, keep_last, vocab_size) for ids in sequences]
    if width is None:
        width = bucket_length(max((len(ids) for ids in clipped), default=0), cap)
    out = np.full((len(clipped), width), PAD_ID, dtype=np.int32)
    for row, ids in enumerate(clipped):
        out[row, : len(ids)] = ids
    return out


class _Tower(keras.layers.Layer):
    """Embedded tokens -> (recurrent: a bidirectional GRU) -> masked pooling -> dense layers
    -> unit vector. The embedding table is not the tower's own: the network passes in the
    looked-up vectors, so two towers can share one table and the weights file holds it once."""

    def __init__(self, config: DualEncoderConfig, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mean_max = config.pooling == "mean_max"
        self.recurrent = (
            keras.layers.Bidirectional(
                _gru(config.recurrent_units, seed + 50, backwards=False),
                backward_layer=_gru(config.recurrent_units, seed + 60, backwards=True),
                name="recurrent",
            )
            if config.encoder == "recurrent" else None
        )
        self.dense = [
            keras.layers.Dense(
                config.hidden,
                activation="relu" if index < config.dense_layers - 1 else None,
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed + index),
                name=f"dense_{index}",
            )
            for index in range(config.dense_layers)
        ]

    def call(self, vectors: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        if self.recurrent is not None:
            # The padding is masked out of the recurrence too (each direction carries its
            # state over it), so a padded sequence still encodes as the unpadded one. The
            # words themselves are pooled beside their states: the bag's features, which
            # train fast, and on them what the order adds.
            states = self.recurrent(vectors, mask=tf.not_equal(ids, PAD_ID))
            vectors = tf.concat([vectors, states], axis=-1)
        mask = tf.cast(tf.not_equal(ids, PAD_ID), vectors.dtype)[:, :, None]
        count = tf.reduce_sum(mask, axis=1)
        pooled = tf.reduce_sum(vectors * mask, axis=1) / tf.maximum(count, 1.0)
        if self.mean_max:
            lowest = tf.fill(tf.shape(vectors), tf.constant(vectors.dtype.min, vectors.dtype))
            peak = tf.reduce_max(tf.where(mask > 0, vectors, lowest), axis=1)
            peak = tf.where(count > 0, peak, tf.zeros_like(peak))  # an empty sequence: zeros
            pooled = tf.concat([pooled, peak], axis=-1)
        for layer in self.dense:
            pooled = layer(pooled)
        return tf.math.l2_normalize(pooled, axis=-1)


def _gru(units: int, seed: int, *, backwards: bool) -> keras.layers.GRU:
    """One direction of the recurrent tower, seeded apart from the other (a seeded
    initializer draws the same values each call, and twin directions would start alike)."""
    return keras.layers.GRU(
        units, return_sequences=True, go_backwards=backwards,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 1),
        name="backward_gru" if backwards else "forward_gru",
    )


class DualEncoderNetwork(keras.Model):
    """The two towers and their embedding table(s). `call((posts, replies))` returns the unit
    vectors of both; the training loop and `DualEncoder` use `encode_posts` and
    `encode_replies`, which take [batch, length] int32 ids (0 is padding)."""

    def __init__(self, config: DualEncoderConfig,
                 embeddings: tuple[np.ndarray, np.ndarray] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        config.check()
        self.config = config
        seed = config.seed

        def embedding(offset: int, name: str) -> keras.layers.Embedding:
            return keras.layers.Embedding(
                config.vocab_size, config.embedding_dim, name=name,
                embeddings_initializer=keras.initializers.RandomUniform(
                    -0.05, 0.05, seed=seed + offset),
            )

        # Seeds apart per layer: a seeded Keras initializer draws the same values each call,
        # and two towers starting from identical weights would waste the second one.
        self.post_embedding = embedding(0, "post_embedding")
        self.reply_embedding = (
            self.post_embedding if config.shared_embedding else embedding(1, "reply_embedding")
        )
        self.post_tower = _Tower(config, seed + 100, name="post_tower")
        self.reply_tower = _Tower(config, seed + 200, name="reply_tower")
        empty = tf.zeros([1, 1], tf.int32)
        self((empty, empty))  # create every variable now, so weights load and save at once
        if embeddings is not None:
            self._start_from(embeddings)

    def _start_from(self, embeddings: tuple[np.ndarray, np.ndarray]) -> None:
        """Set the post and reply tables to `embeddings` (each [>= vocab_size, embedding_dim];
        rows past the vocabulary, a model's copy ids, are not the ranker's)."""
        vocab, width = self.config.vocab_size, self.config.embedding_dim
        tables = [self.post_embedding]
        if not self.config.shared_embedding:
            tables.append(self.reply_embedding)
        for layer, matrix in zip(tables, embeddings, strict=False):
            if matrix.ndim != 2 or matrix.shape[0] < vocab or matrix.shape[1] != width:
                raise ValueError(
                    f"dual encoder: initial embeddings must be [{vocab}+, {width}], "
                    f"got {list(matrix.shape)}")
            layer.set_weights([np.asarray(matrix[:vocab], dtype=np.float32)])

    def encode_posts(self, ids: tf.Tensor) -> tf.Tensor:
        return self.post_tower(self.post_embedding(ids), ids)

    def encode_replies(self, ids: tf.Tensor) -> tf.Tensor:
        return self.reply_tower(self.reply_embedding(ids), ids)

    def call(self, inputs: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        posts, replies = inputs
        return self.encode_posts(posts), self.encode_replies(replies)


_IDS_SPEC = tf.TensorSpec([None, None], tf.int32)


class DualEncoder:
    """A trained (or freshly initialised) dual encoder: unit vectors for posts and replies,
    and the cosine of a post with each of its candidate replies."""

    config: DualEncoderConfig
    network: DualEncoderNetwork

    def __init__(self, config: DualEncoderConfig,
                 network: DualEncoderNetwork | None = None) -> None:
        config.check()
        self.config = config
        self.network = network if network is not None else DualEncoderNetwork(config)
        # One trace each, whatever the batch shape (the signature leaves both axes open).
        # No AutoGraph: there is no tensor-dependent Python control flow to convert.
        self._encode_posts = tf.function(
            self.network.encode_posts, input_signature=[_IDS_SPEC], autograph=False)
        self._encode_replies = tf.function(
            self.network.encode_replies, input_signature=[_IDS_SPEC], autograph=False)

    def save(self, directory: Path) -> None:
        """Write `dual_encoder.json` and `dual_encoder.weights.h5` into `directory`, which
        is the dual encoder's own: it is replaced as a whole, atomically, so a reader never
        finds new weights beside an old config."""
        with atomic_directory(Path(directory)) as tmp:
            (tmp / CONFIG_FILE).write_text(self.config.to_json(), "utf-8")
            self.network.save_weights(tmp / WEIGHTS_FILE)

    @classmethod
    def load(cls, directory: Path) -> DualEncoder:
        """Read what `save` wrote; a missing or unreadable file is a ValueError naming it."""
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        try:
            text = config_path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{config_path}: cannot read the dual encoder config: {exc}") from exc
        config = DualEncoderConfig.from_json(text, str(config_path))
        weights_path = directory / WEIGHTS_FILE
        if not weights_path.is_file():
            raise ValueError(f"{weights_path}: the dual encoder weights are missing")
        network = DualEncoderNetwork(config)
        try:
            network.load_weights(weights_path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{weights_path}: cannot load the dual encoder weights: {exc}") from exc
        return cls(config, network)

    def post_vectors(self, posts: Sequence[Sequence[int]]) -> np.ndarray:
        """[N, hidden] float32 unit vectors of the posts (each cut to its last
        `max_post_tokens` tokens)."""
        return self._vectors(posts, self.config.max_post_tokens, True, self._encode_posts)

    def reply_vectors(self, replies: Sequence[Sequence[int]]) -> np.ndarray:
        """[N, hidden] float32 unit vectors of the replies (each cut to its first
        `max_reply_tokens` tokens)."""
        return self._vectors(replies, self.config.max_reply_tokens, False, self._encode_replies)

    def scores(self, posts: Sequence[Sequence[int]],
               candidates: Sequence[Sequence[Sequence[int]]]) -> list[np.ndarray]:
        """For each post, the cosine of it with each of its candidates, in their order.
        Every distinct candidate (as ids) is encoded once, all in one batched pass, so a
        candidate shared by many posts (a retrieved reply, a stock reply) costs one
        encoding."""
        if len(posts) != len(candidates):
            raise ValueError(
                f"scores needs one candidate list per post: {len(posts)} posts, "
                f"{len(candidates)} candidate lists"
            )
        distinct: dict[tuple[int, ...], int] = {}
        rows = [
            [distinct.setdefault(tuple(int(t) for t in reply), len(distinct)) for reply in group]
            for group in candidates
        ]
        post_vectors = self.post_vectors(posts)
        reply_vectors = self.reply_vectors([list(ids) for ids in distinct])
        return [
            reply_vectors[np.asarray(indices, dtype=np.int64)] @ post_vectors[index]
            if indices else np.zeros(0, dtype=np.float32)
            for index, indices in enumerate(rows)
        ]

    def _vectors(self, sequences: Sequence[Sequence[int]], cap: int, keep_last: bool,
                 encode: Any) -> np.ndarray:
        """Encode in chunks of similar lengths (sorted by length, so little padding), and
        return the vectors in the callers' order."""
        out = np.zeros((len(sequences), self.config.hidden), dtype=np.float32)
        vocab = self.config.vocab_size
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        for start in range(0, len(order), ENCODE_BATCH):
            chunk = order[start : start + ENCODE_BATCH]
            ids = pad_ids([sequences[i] for i in chunk], cap, keep_last, vocab)
            out[chunk] = encode(tf.constant(ids)).numpy()
        return out
