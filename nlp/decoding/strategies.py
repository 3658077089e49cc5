"""Search strategies: how hypotheses are kept and extended, resolved by name.

A strategy sees one step's constrained log-probabilities and the running search state, and
returns a `Selection`: for every row of the next step, which row it continues (its parent) and
which token it appends. The decoding loop (`nlp.decoding.loop`) does all the bookkeeping that
follows from that, identically for every strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from nlp.decoding.constraints import NEG_INF
from nlp.decoding.options import STRATEGY_NAMES, DecodeOptions, rows_per_input
from nlp.decoding.params import DecodeParams
from nlp.decoding.samplers import BestSampler, RandomSampler, Sampler
from nlp.decoding.scoring import Scorer
from nlp.tokenizers.specials import EOS_ID


class SearchState(NamedTuple):
    """Per-row state of the hypotheses (rows = batch * width, width rows per input)."""

    log_probs: tf.Tensor  # [rows] float32: sum of the chosen tokens' log-probabilities
    finished: tf.Tensor  # [rows] bool
    lengths: tf.Tensor  # [rows] int32: tokens generated, end token included
    coverage: tf.Tensor  # [rows, S] float32: attention summed over the generated tokens
    ids: tf.Tensor  # [rows, L] int32: tokens so far (PAD after the end)
    attention: tf.Tensor  # [rows, L, S] float32, or [rows, L, 0] when not collected


class Selection(NamedTuple):
    parents: tf.Tensor | None  # [rows] int32 row each new row continues; None = same row
    ids: tf.Tensor  # [rows] int32
    log_probs: tf.Tensor  # [rows] float32 log-probability of each chosen token


class Strategy:
    """Base: `width` rows per input; `key` identifies the compiled graph it needs.

    `state` passed to `select` already counts this step in `lengths` and `coverage` for rows
    still alive, so candidates can be scored as they would stand after the step.
    """

    width: int = 1
    random: bool = False  # True if it reads `params.draws` (then the decoder fills them)
    # True if every row only ever extends itself (no parents), so the loop may drop a
    # finished row from later steps (`nlp.decoding.loop.dynamic_decode`'s `compact_rows`)
    independent_rows: bool = False

    @property
    def key(self) -> tuple[object, ...]:
        return (type(self).__name__, self.width)

    def initial_log_probs(self, batch: tf.Tensor) -> tf.Tensor:
        return tf.zeros([batch * self.width], tf.float32)

    def select(
        self,
        log_probs: tf.Tensor,
        state: SearchState,
        scorer: Scorer,
        step: tf.Tensor,
        params: DecodeParams,
    ) -> Selection:
        raise NotImplementedError


class GreedySearch(Strategy):
    """Each row extends itself with the sampler's token; finished rows only repeat EOS.

    With `BestSampler` this is greedy search; with `RandomSampler` and width n it draws n
    independent samples per input.
    """

    independent_rows = True

    def __init__(self, sampler: Sampler, width: int = 1) -> None:
        self.sampler = sampler
        self.width = width
        self.random = sampler.random

    @property
    def key(self) -> tuple[object, ...]:
        return (*super().key, type(self.sampler).__name__)

    def select(
        self,
        log_probs: tf.Tensor,
        state: SearchState,
        scorer: Scorer,
        step: tf.Tensor,
        params: DecodeParams,
    ) -> Selection:
        ids = self.sampler.pick(log_probs, step, params)
        chosen = tf.gather(log_probs, ids, batch_dims=1)
        return Selection(
            parents=None,
            ids=tf.where(state.finished, EOS_ID, ids),
            log_probs=tf.where(state.finished, 0.0, chosen),
        )


class BeamSearch(Strategy):
    """Keeps the `width` best-scoring hypotheses per input.

    Finished hypotheses stay in the beam with their score frozen (their only continuation is
    EOS at log-probability 0) and compete with live ones under the same GNMT score, so the
    loop can stop as soon as every row is finished. Candidates are first cut to the top
    `width` tokens per row by log-probability: the score is a per-row increasing function of
    it, so this loses nothing and keeps all penalty arithmetic on [rows, width] tensors
    instead of [rows, V'].
    """

    def __init__(self, width: int) -> None:
        self.width = width

    def initial_log_probs(self, batch: tf.Tensor) -> tf.Tensor:
        # Only the first copy of each input is live at the start, so the beam does not fill
        # with `width` identical hypotheses.
        first = tf.constant([0.0] + [NEG_INF] * (self.width - 1))
        return tf.tile(first, [batch])

    def select(
        self,
        log_probs: tf.Tensor,
        state: SearchState,
        scorer: Scorer,
        step: tf.Tensor,
        params: DecodeParams,
    ) -> Selection:
        parents, ids, chosen = select_in_group(log_probs, state, scorer, self.width)
        return Selection(
            parents=tf.reshape(parents, [-1]),
            ids=tf.reshape(ids, [-1]),
            log_probs=tf.reshape(chosen, [-1]),
        )


class DiverseBeamSearch(Strategy):
    """Diverse beam search (Vijayakumar et al. 2018): `groups` beams of `width / groups`.

    Why: a plain beam's hypotheses mostly share their first words ("i'm sorry." / "i'm sorry
    , sir."), so re-ranking an n-best list has little to choose from. Here the groups are
    searched one after another within each step; group g's candidates lose
    `diversity_penalty` times the number of earlier groups that chose the same token at this
    step (the Hamming diversity term), so the groups take different paths. The penalty only
    steers selection: each hypothesis keeps its true log-probability, and final ranking uses
    the ordinary score. With one group, or a zero penalty, every group is a plain beam.
    """

    def __init__(self, width: int, groups: int) -> None:
        if width % groups:
            raise ValueError(f"width {width} is not a multiple of groups {groups}")
        self.width = width
        self.groups = groups

    @property
    def key(self) -> tuple[object, ...]:
        return (*super().key, self.groups)

    def initial_log_probs(self, batch: tf.Tensor) -> tf.Tensor:
        # The first row of every group is live, so each group starts from BOS once.
        size = self.width // self.groups
        first = tf.constant(([0.0] + [NEG_INF] * (size - 1)) * self.groups)
        return tf.tile(first, [batch])

    def select(
        self,
        log_probs: tf.Tensor,
        state: SearchState,
        scorer: Scorer,
        step: tf.Tensor,
        params: DecodeParams,
    ) -> Selection:
        k, size = self.width, self.width // self.groups
        batch = tf.shape(log_probs)[0] // k
        vocab = tf.shape(log_probs)[1]
        used = tf.zeros([batch, vocab], tf.float32)  # earlier groups' tokens at this step
        parents, ids, chosen = [], [], []
        for group in range(self.groups):
            rows = tf.reshape(
                tf.range(batch)[:, None] * k + group * size + tf.range(size)[None, :], [-1]
            )  # [batch * size] this group's rows
            penalty = params.diversity_penalty * tf.repeat(used, size, axis=0)
            group_parents, group_ids, group_chosen = select_in_group(
                tf.gather(log_probs, rows), state, scorer, size, rows=rows, penalty=penalty
            )
            live = ~tf.gather(state.finished, group_parents)
            used += tf.reduce_sum(
                tf.one_hot(group_ids, vocab) * tf.cast(live, tf.float32)[:, :, None], axis=1
            )
            parents.append(group_parents)
            ids.append(group_ids)
            chosen.append(group_chosen)

        def rows_of(parts: list[tf.Tensor]) -> tf.Tensor:
            return tf.reshape(tf.concat(parts, axis=1), [-1])  # groups in row order

        return Selection(parents=rows_of(parents), ids=rows_of(ids), log_probs=rows_of(chosen))


def select_in_group(
    log_probs: tf.Tensor,
    state: SearchState,
    scorer: Scorer,
    size: int,
    *,
    rows: tf.Tensor | None = None,
    penalty: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The beam step of `BeamSearch` and of each `DiverseBeamSearch` group, written once:
    (parents, ids, log_probs) of the group's next rows, each [batch, size]; `parents` are rows
    of `state`.

    `log_probs` [batch * size, V] are the group's rows `rows` of `state` (None: all rows, the
    group is the whole beam). `penalty` (same shape; None: none) is subtracted for ranking
    only: it steers a diverse group away from tokens, the hypotheses keep their true
    log-probabilities. A finished row's only candidate is EOS at log-probability 0, so its
    score stays frozen while it competes with the live ones (see `BeamSearch`).
    """
    batch = tf.shape(log_probs)[0] // size

    def own(values: tf.Tensor) -> tf.Tensor:
        return values if rows is None else tf.gather(values, rows)  # the group's rows

    if penalty is None:
        top_ranked, top_ids = top_k_wide(log_probs, size)  # [batch * size, size]
        top_log_probs = top_ranked
    else:
        top_ranked, top_ids = top_k_wide(log_probs - penalty, size)
        top_log_probs = tf.gather(log_probs, top_ids, batch_dims=1)
    only_eos = tf.constant([[0.0] + [NEG_INF] * (size - 1)])
    finished = own(state.finished)[:, None]
    top_ranked = tf.where(finished, only_eos, top_ranked)
    top_log_probs = tf.where(finished, only_eos, top_log_probs)
    top_ids = tf.where(finished, EOS_ID, top_ids)
    if rows is not None:
        scorer = Scorer(scorer.alpha, scorer.beta, own(scorer.source_mask))
    scores = scorer(
        own(state.log_probs)[:, None] + top_ranked, own(state.lengths), own(state.coverage)
    )
    _, best = tf.math.top_k(tf.reshape(scores, [batch, size * size]), k=size)  # [batch, size]

    def take(candidates: tf.Tensor) -> tf.Tensor:
        flat = tf.reshape(candidates, [batch, size * size])
        return tf.gather(flat, best, batch_dims=1)  # [batch, size]

    group_rows = tf.reshape(tf.range(batch * size) if rows is None else rows, [batch, size])
    parents = tf.gather(group_rows, best // size, batch_dims=1)
    return parents, take(top_ids), take(top_log_probs)


_CHUNK = 32


def top_k_wide(values: tf.Tensor, k: int) -> tuple[tf.Tensor, tf.Tensor]:
    """`tf.math.top_k(values, k)` for rows as wide as a vocabulary, faster on CPU.

    TensorFlow's TopK kernel on vocabulary-wide rows (a beam step at a large batch) costs about
    as much as the model's output projection. Here each row is cut into chunks of `_CHUNK`: a chunk
    holding one of the k largest values has a maximum at least as large as the k-th largest,
    so the k chunks with the largest maxima hold all of them (up to ties between equal
    values, which may then resolve to different but equal-valued entries). Only a cheap
    row-wise max and two small top-k calls touch the data. Results are sorted, best first.
    A row with fewer than k finite values gets -inf entries whose ids are arbitrary (valid).
    """
    rows, width = tf.shape(values)[0], tf.shape(values)[1]
    # At least k chunks, so toy vocabularies work too (padding is -inf and never wins).
    chunks = tf.maximum((width + _CHUNK - 1) // _CHUNK, k)
    padded = tf.pad(values, [[0, 0], [0, chunks * _CHUNK - width]], constant_values=NEG_INF)
    grouped = tf.reshape(padded, [rows, chunks, _CHUNK])
    _, best_chunks = tf.math.top_k(tf.reduce_max(grouped, axis=-1), k=k)  # [rows, k]
    candidates = tf.reshape(tf.gather(grouped, best_chunks, batch_dims=1), [rows, k * _CHUNK])
    top_values, picked = tf.math.top_k(candidates, k=k)
    ids = tf.gather(best_chunks, picked // _CHUNK, batch_dims=1) * _CHUNK + picked % _CHUNK
    return top_values, tf.minimum(ids, width - 1)


# Each strategy's width (rows of the loop per input) is `rows_per_input`'s: one definition,
# which code that plans batches without TensorFlow (the bot's warm-up) reads too.
_REGISTRY: dict[str, Callable[[DecodeOptions, bool], Strategy]] = {
    "greedy": lambda options, compiled: GreedySearch(BestSampler(), rows_per_input(options)),
    "beam": lambda options, compiled: BeamSearch(rows_per_input(options)),
    "sample": lambda options, compiled: GreedySearch(
        RandomSampler(xla_clusters=compiled), width=rows_per_input(options)),
    "diverse_beam": lambda options, compiled: DiverseBeamSearch(rows_per_input(options),
                                                                options.beam_groups),
}
if set(_REGISTRY) != set(STRATEGY_NAMES):  # pragma: no cover - a programming error
    raise RuntimeError("strategy registry and options.STRATEGY_NAMES disagree")


def build_strategy(options: DecodeOptions, *, xla_clusters: bool = True) -> Strategy:
    """The strategy object for `options.strategy` (a name in `STRATEGY_NAMES`).
    `xla_clusters=False` keeps XLA out of the graph (see `RandomSampler`), for graphs that
    other runtimes read."""
    return _REGISTRY[options.strategy](options, xla_clusters)
