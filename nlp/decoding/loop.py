"""The one decoding loop: a `tf.while_loop` over output positions, shared by all strategies.

Everything here runs at trace time only; the traced graph contains the whole search (encoder
call, tiling, per-step model call, constraints, selection, bookkeeping, final ranking), so no
Python runs per token.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import tensorflow as tf

from nlp.decoding.constraints import block_repeated_ngrams, forbidden_token_bias, rarity
from nlp.decoding.params import DecodeParams
from nlp.decoding.scoring import Scorer
from nlp.decoding.strategies import SearchState, Strategy
from nlp.tokenizers.specials import BOS_ID, EOS_ID, PAD_ID


class StepModel(Protocol):
    """What the decoder needs from a model (see docs/ARCHITECTURE.md)."""

    def encode(self, source_ids: tf.Tensor, training: bool = False) -> tuple[Any, Any]: ...

    def decode_step(
        self, prev_ids: tf.Tensor, state: Any, context: Any, training: bool = False
    ) -> tuple[tf.Tensor, Any, tf.Tensor]: ...


class DecodeOutput(NamedTuple):
    """Hypotheses of each input, best first (width = the strategy's width)."""

    ids: tf.Tensor  # [B, width, L] int32, PAD after the end
    scores: tf.Tensor  # [B, width] float32
    lengths: tf.Tensor  # [B, width] int32, end token included
    attention: tf.Tensor  # [B, width, L, S] float32 ([B, width, L, 0] when not collected)


def dynamic_decode(
    model: StepModel,
    strategy: Strategy,
    source_ids: tf.Tensor,
    params: DecodeParams,
    *,
    no_repeat_ngram: int | tf.Tensor = 0,
    max_no_repeat_ngram: int = 0,
    return_attention: bool = True,
    compact_rows: bool = False,
) -> DecodeOutput:
    """Decode a padded batch `source_ids` [B, S] (PAD = 0) with `strategy`.

    `no_repeat_ngram` is a Python int (it fixes the graph), or a scalar tensor in
    [0, `max_no_repeat_ngram`]: then every size is traced inside the step and the tensor picks
    one, so one loop serves them all (the exported SavedModel, which cannot retrace).

    `compact_rows` (a strategy whose rows never trade places: greedy and sampling) drops
    finished rows from the model's step: a call runs until its longest hypothesis ends, and
    without it every finished row is computed to the end (for 8 samples of 7 words on
    average, the longest often runs to `max_length`). Row counts then change from step to
    step, which XLA cannot compile, so the decoder asks for it only in the plain graph.
    """
    batch = tf.shape(source_ids)[0]
    width = strategy.width
    source_mask = tf.not_equal(source_ids, PAD_ID)
    model_state, context = model.encode(source_ids, training=False)
    if width > 1:
        model_state, context, source_mask = _repeat_rows((model_state, context, source_mask),
                                                          width)
    rows = batch * width
    limits = _length_limits(tf.reduce_sum(tf.cast(source_mask, tf.int32), axis=1), params)
    # The history buffers are sized by the option, not by the data, so that under XLA their
    # shape is known when compiling (a data-dependent size would force a compile per input).
    max_steps = params.max_length
    source_len = tf.shape(source_ids)[1]

    search = SearchState(
        log_probs=strategy.initial_log_probs(batch),
        finished=tf.zeros([rows], tf.bool),
        lengths=tf.zeros([rows], tf.int32),
        coverage=tf.zeros([rows, source_len], tf.float32),
        ids=tf.fill([rows, max_steps], PAD_ID),
        attention=tf.zeros([rows, max_steps, source_len if return_attention else 0]),
    )

    # the words' count, which a copying model's wider rows exceed by the source's length
    vocabulary = getattr(getattr(model, "config", None), "vocab_size", None)

    def advance_rows(step: tf.Tensor, prev_ids: tf.Tensor, model_state: Any, context: Any,
                     source_mask: tf.Tensor, search: SearchState, params: DecodeParams,
                     limits: tf.Tensor) -> tuple[tf.Tensor, Any, SearchState]:
        """One step of the rows given: their next ids, model state and search state."""
        log_probs, model_state, attention = model.decode_step(
            prev_ids, model_state, context, training=False
        )
        log_probs = tf.cast(log_probs, tf.float32)
        attention = tf.cast(attention, tf.float32)
        width = tf.shape(log_probs)[1]
        log_probs += (forbidden_token_bias(width, step, params.min_length, params.suppress_unk)
                      + params.rare_word_weight * rarity(width, vocabulary))[None, :]
        if isinstance(no_repeat_ngram, tf.Tensor):
            sizes = [lambda: log_probs] + [
                lambda n=n: block_repeated_ngrams(log_probs, search.ids, step, n)
                for n in range(1, max_no_repeat_ngram + 1)
            ]
            log_probs = tf.switch_case(no_repeat_ngram, sizes)
        elif no_repeat_ngram:
            log_probs = block_repeated_ngrams(log_probs, search.ids, step, no_repeat_ngram)

        alive = ~search.finished
        attention = tf.where(alive[:, None], attention, 0.0)
        grown = search._replace(
            lengths=search.lengths + tf.cast(alive, tf.int32),
            coverage=search.coverage + attention,
        )
        scorer = Scorer(params.length_penalty, params.coverage_penalty, source_mask)
        selection = strategy.select(log_probs, grown, scorer, step, params)
        if selection.parents is not None:
            grown, attention, alive, model_state = tf.nest.map_structure(
                lambda x: tf.gather(x, selection.parents), (grown, attention, alive, model_state)
            )
        at_step = tf.equal(tf.range(max_steps), step)  # [L]
        ids = tf.where(at_step[None, :], tf.where(alive, selection.ids, PAD_ID)[:, None],
                       grown.ids)
        history = grown.attention
        if return_attention:
            history = tf.where(at_step[None, :, None], attention[:, None, :], history)
        search = grown._replace(
            log_probs=grown.log_probs + selection.log_probs,
            finished=grown.finished | tf.equal(selection.ids, EOS_ID)
            | (grown.lengths >= limits),
            ids=ids,
            attention=history,
        )
        return selection.ids, model_state, search

    def not_done(step: tf.Tensor, *state: Any) -> tf.Tensor:
        return (step < max_steps) & ~tf.reduce_all(state[-1].finished)

    first_ids = tf.fill([rows], BOS_ID)
    if not (compact_rows and strategy.independent_rows):

        def advance(step: tf.Tensor, prev_ids: tf.Tensor, model_state: Any,
                    search: SearchState) -> tuple[tf.Tensor, tf.Tensor, Any, SearchState]:
            ids, model_state, search = advance_rows(step, prev_ids, model_state, context,
                                                    source_mask, search, params, limits)
            return step + 1, ids, model_state, search

        *_, search = tf.while_loop(
            not_done, advance, (tf.constant(0), first_ids, model_state, search)
        )
    else:
        # The live rows' states travel compacted; the whole batch's search state is written
        # only when rows finish, so a step without a finished row costs no extra op.

        def write(whole: SearchState, live: tf.Tensor, part: SearchState) -> SearchState:
            return tf.nest.map_structure(
                lambda full, live_part: full if 0 in full.shape[1:]  # nothing to write
                else tf.tensor_scatter_nd_update(full, live[:, None], live_part),
                whole, part,
            )

        def advance_live(step: tf.Tensor, live: tf.Tensor, prev_ids: tf.Tensor,
                         model_state: Any, context: Any, source_mask: tf.Tensor,
                         draws: tf.Tensor, limits: tf.Tensor, part: SearchState,
                         search: SearchState) -> tuple[Any, ...]:
            ids, model_state, part = advance_rows(
                step, prev_ids, model_state, context, source_mask, part,
                params._replace(draws=draws), limits,
            )
            going = ~part.finished
            carried = (live, ids, model_state, context, source_mask, draws, limits, part)

            def drop_finished() -> tuple[Any, ...]:
                kept = tf.nest.map_structure(lambda x: tf.boolean_mask(x, going), carried)
                return (*kept, write(search, live, part))

            return (step + 1, *tf.cond(tf.reduce_all(going), lambda: (*carried, search),
                                       drop_finished))

        loop_vars = (tf.constant(0), tf.range(rows), first_ids, model_state, context,
                     source_mask, params.draws, limits, search, search)
        _, live, *_, part, search = tf.while_loop(
            not_done, advance_live, loop_vars,
            shape_invariants=tf.nest.map_structure(_any_rows, loop_vars),
        )
        search = write(search, live, part)  # rows that reached max_steps
    scorer = Scorer(params.length_penalty, params.coverage_penalty, source_mask)
    return _rank(search, scorer(search.log_probs, search.lengths, search.coverage), batch,
                 width)


def _any_rows(x: tf.Tensor) -> tf.TensorShape:
    """A loop variable's shape with any number of rows (scalars stay scalars)."""
    return x.shape if x.shape.rank == 0 else tf.TensorShape([None, *x.shape[1:]])


def _length_limits(source_lengths: tf.Tensor, params: DecodeParams) -> tf.Tensor:
    """Per-row maximum output length: absolute, or min(absolute, ceil(ratio * source length))."""
    relative = tf.cast(tf.math.ceil(params.max_length_ratio * tf.cast(source_lengths,
                                                                       tf.float32)), tf.int32)
    limits = tf.where(params.max_length_ratio > 0, tf.minimum(relative, params.max_length),
                      params.max_length)
    return tf.maximum(limits, 1)


def _repeat_rows(nest: Any, times: int) -> Any:
    """[B, ...] -> [B*times, ...], each input's copies adjacent (row = b * times + copy)."""
    return tf.nest.map_structure(lambda x: tf.repeat(x, times, axis=0), nest)


def _rank(search: SearchState, scores: tf.Tensor, batch: tf.Tensor, width: int) -> DecodeOutput:
    """Group rows by input and sort each input's hypotheses by score, best first."""
    scores = tf.reshape(scores, [batch, width])
    scores, order = tf.math.top_k(scores, k=width)

    def by_input(x: tf.Tensor) -> tf.Tensor:
        grouped = tf.reshape(x, tf.concat([[batch, width], tf.shape(x)[1:]], axis=0))
        return tf.gather(grouped, order, batch_dims=1)

    return DecodeOutput(
        ids=by_input(search.ids),
        scores=scores,
        lengths=by_input(search.lengths),
        attention=by_input(search.attention),
    )
