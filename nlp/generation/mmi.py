"""MMI re-ranking of an n-best list (Li et al. 2016, "A Diversity-Promoting Objective").

Why: a chat model's most probable reply is the generic one ("i'm sorry."), because it is a
likely answer to anything. Maximum mutual information prefers replies that are likely for
THIS message and not for every message:

- anti-LM:  log p(T|S) - lambda * sum_{k < gamma} log p_lm(t_k | t_<k) + bonus * |T|
  (a target-side language model, `s2s train --task lm`; only the first gamma tokens are
  penalised, as in the paper, because the LM penalty on later tokens rewards ungrammatical
  endings; gamma = 0 means all of them);
- bidirectional: log p(T|S) + lambda * log p(S|T) / |S| + bonus * |T|
  (a backward model, `s2s train --reverse`).

log p(T|S) is the decoder's hypothesis score (the plain sum of log-probabilities when no
length or coverage penalty is set). |T| counts the reply's tokens plus its end token, |S| the
message's tokens plus the end token, as scored.

With `mmi_per_token` each term is normalised once, by the number of tokens it sums over:

- anti-LM:  log p(T|S) / |T| - lambda * mean_{k < g} log p_lm(t_k | t_<k) + bonus,
  g = min(gamma, the tokens the LM scored) (all of them when gamma = 0): the penalty is the
  mean over the tokens it penalises. Dividing that sum by |T| instead would shrink a long
  reply's penalty more than a short one's, and so favour short replies, the opposite of
  what MMI is for;
- bidirectional: log p(T|S) / |T| + lambda * log p(S|T) / |S| + bonus
  (the backward term is already a mean over the message; it is not divided again).

The bonus per token is the same for every candidate there, so it no longer changes the
ranking. Per token is how Hits@1 scores a reply (the sum favours short replies), so weights
chosen by Hits (`s2s tune-decoding`) rank n-best lists by the score they were chosen for.
The companion model scores all candidates of a batch in ONE compiled teacher-forced call
(`CompanionScorer.token_log_probs`), encoding each distinct source once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nlp.corpus.records import Pair
from nlp.decoding.options import DecodeOptions
from nlp.tokenizers.specials import BOS_ID, PAD_ID

if TYPE_CHECKING:
    from nlp.generation.bundle import Bundle

# Which companion model each re-ranking needs (its data settings, checked on load).
COMPANION_KIND = {"mmi-antilm": "lm", "mmi-bidi": "reverse"}
# Teacher-forced rows per scoring call: the output layer holds rows x length x vocabulary
# floats (512 x 50 x 10,000 is 1 GB), and a batch of messages' wide n-best lists (MMI), or
# each reply against every post (PMI's marginals), would not fit in memory at once.
SCORED_ROWS = 512


def mmi_score(
    forward: float, companion: np.ndarray, reply_length: int, options: DecodeOptions
) -> float:
    """The MMI score of one candidate (the formulas of the module docstring); `companion` is
    the companion model's per-token log-probabilities of its target (the reply for anti-LM,
    the message for bidi), EOS included, and `reply_length` is |T|."""
    per_token = options.mmi_per_token
    if options.rerank == "mmi-antilm":
        penalised = companion[: options.mmi_gamma] if options.mmi_gamma else companion
        extra = -float(np.sum(penalised))
        if per_token:  # a mean over the penalised tokens, not over the whole reply
            extra /= max(len(penalised), 1)
    elif options.rerank == "mmi-bidi":
        # log p(S|T) / |S| in both modes: a message's length says nothing about the reply
        extra = float(np.sum(companion)) / max(len(companion), 1)
    else:
        raise ValueError(f"no MMI score for rerank={options.rerank!r}")
    if per_token:
        return forward / reply_length + options.mmi_lambda * extra + options.length_bonus
    return forward + options.mmi_lambda * extra + options.length_bonus * reply_length


class CompanionScorer:
    """Teacher-forced log-probabilities from a companion bundle (LM or reverse model), or from
    a chat bundle itself (`s2s tune-decoding` scores the likelihood of chosen replies)."""

    def __init__(self, source: Path | Bundle) -> None:
        import tensorflow as tf

        from nlp.generation.bundle import Bundle, load_bundle
        from nlp.model.distribution import target_log_probs

        self.bundle = source if isinstance(source, Bundle) else load_bundle(source)
        data = self.bundle.config.data
        self.kind = "lm" if data.task == "lm" else "reverse" if data.reverse else "chat"
        model, vocab_size = self.bundle.model, self.bundle.config.model.vocab_size

        def score(
            source: tf.Tensor, owner: tf.Tensor, target_in: tf.Tensor, target_out: tf.Tensor
        ) -> tf.Tensor:
            # each distinct source encoded once; row i of the targets reads row owner[i]
            state, context = model.encode(source, training=False)
            state = {name: tf.gather(value, owner) for name, value in state.items()}
            context = {name: tf.gather(value, owner) for name, value in context.items()}
            outputs = model.teacher_forcing_encoded(state, context, target_in, training=False)
            log_probs = target_log_probs(outputs, target_out, vocab_size)
            return tf.where(tf.not_equal(target_out, PAD_ID), log_probs, 0.0)

        spec = tf.TensorSpec([None, None], tf.int32)
        rows = tf.TensorSpec([None], tf.int32)
        self._score = tf.function(score, input_signature=[spec, rows, spec, spec])

    def token_log_probs(self, pairs: Sequence[Pair]) -> list[np.ndarray]:
        """Per pair, log p(target token | source, earlier tokens) for its target and EOS (none
        when the target is longer than the companion's `train.max_target_length`: it is cut,
        `TextCodec.pair_ids`), as the companion sees the pair (the reverse model swaps the
        sides itself, the LM drops the source). Pairs go through `SCORED_ROWS` a call, each
        call encoding each distinct source once (`distinct_rows`): the K candidates of one
        post, or the n-best replies to one message, share their encoder work."""
        return [row for start in range(0, len(pairs), SCORED_ROWS)
                for row in self._scored(pairs[start:start + SCORED_ROWS])]

    def _scored(self, pairs: Sequence[Pair]) -> list[np.ndarray]:
        ids = [self.bundle.codec.pair_ids(pair) for pair in pairs]
        unique, owner = distinct_rows([source or [BOS_ID] for source, _ in ids])
        target_in = _padded([[BOS_ID, *target[:-1]] for _, target in ids])
        target_out = _padded([target for _, target in ids])
        scores = np.asarray(
            self._score(_padded(unique), np.asarray(owner, np.int32), target_in, target_out)
        )
        return [scores[row, : len(target)] for row, (_, target) in enumerate(ids)]


def distinct_rows(rows: Sequence[Sequence[int]]) -> tuple[list[list[int]], list[int]]:
    """(the distinct rows in order of first appearance, for each row the index of its own
    among them): what lets `CompanionScorer` encode each source once."""
    index: dict[tuple[int, ...], int] = {}
    owner = [index.setdefault(tuple(row), len(index)) for row in rows]
    return [list(row) for row in index], owner


def _padded(rows: Sequence[Sequence[int]]) -> np.ndarray:
    batch = np.full((len(rows), max(len(r) for r in rows)), PAD_ID, np.int32)
    for index, row in enumerate(rows):
        batch[index, : len(row)] = row
    return batch
