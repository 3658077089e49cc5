"""`Decoder`: the project's only entry point to decoding (batching, compiled-graph cache,
conversion to `Hypothesis`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import tensorflow as tf

from nlp.decoding.draws import sampling_draws
from nlp.decoding.hypothesis import Hypothesis
from nlp.decoding.loop import DecodeOutput, StepModel, dynamic_decode
from nlp.decoding.options import XLA_BY_DEFAULT, DecodeOptions
from nlp.decoding.params import DecodeParams
from nlp.decoding.strategies import Strategy, build_strategy
from nlp.tokenizers.specials import EOS_ID, PAD_ID
from nlp.util.lru import LruDict

T = TypeVar("T")
CompiledDecode = Callable[[tf.Tensor, DecodeParams], DecodeOutput]

LENGTH_BUCKET = 8  # under XLA, source lengths are padded to a multiple of this
MAX_GRAPHS = 32  # decoding graphs a decoder keeps (the defaults and a few users' settings)


class Decoder:
    """Decodes batches of source id sequences with any model that has `encode`/`decode_step`.

    One `tf.function` is built per structural choice (strategy and its width, n-gram size,
    whether attention is collected) and reused: its input signature has a [None, None] source
    and scalar numeric options, so new batch sizes, source lengths and option values never
    retrace (`trace_count` counts traces, for tests).

    XLA (`jit_compile`, off unless asked for: `nlp.decoding.options.XLA_BY_DEFAULT`) pays off
    where decoding is latency-bound (batch 1: each step is many small kernels that XLA fuses);
    at large batches the gain is small because the output projection dominates
    (`benchmarks/decode_speed.py` compares them). Its price: XLA compiles once per input shape
    and per `max_length` value (seconds each). Sources are
    therefore padded to a multiple of `LENGTH_BUCKET` and batches to a power of two (filled
    with copies of a real input, whose results are dropped), which bounds the number of
    compilations; the traced graph itself is still shared by all shapes.
    Sampling with a seed repeats exactly for a given `jit_compile` setting, and an input's
    sample depends on the seed and that input only, not on its batch-mates
    (`nlp.decoding.draws`); XLA and the plain graph may round differently, so they need not
    draw the same samples. Without `jit_compile`, the sampler's pick is still an XLA cluster
    of its own unless `xla_clusters` is off (`nlp.decoding.samplers.RandomSampler`).
    """

    def __init__(
        self, model: StepModel, *, max_batch_size: int = 64, jit_compile: bool = XLA_BY_DEFAULT,
        xla_clusters: bool = True,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.model = model
        self.max_batch_size = max_batch_size
        self.jit_compile = jit_compile
        self.xla_clusters = xla_clusters
        self.trace_count = 0
        # one graph per strategy, width and n-gram size, the least recently used forgotten:
        # a server's clients may ask for thousands of combinations, each ~15 MB kept
        self._compiled: LruDict[tuple[object, ...], CompiledDecode] = LruDict(MAX_GRAPHS)

    def decode(
        self,
        source_ids: Sequence[Sequence[int]] | np.ndarray,
        options: DecodeOptions,
        *,
        return_attention: bool = True,
        seeds: Sequence[int | None] | None = None,
    ) -> list[list[Hypothesis]]:
        """Return `options.n_best` hypotheses per input, best first.

        `source_ids` is a list of id lists of any lengths, or a PAD-padded [B, S] array.
        Inputs are decoded in length-sorted batches of at most `max_batch_size`; results come
        back in input order. Without `return_attention` every `Hypothesis.attention` is an
        empty [len(ids), 0] array and the attention history is not kept. `seeds` (sampling
        only) gives each input its own seed in place of `options.seed`.
        """
        options.validate()
        sources = _as_lists(source_ids)
        if seeds is not None and len(seeds) != len(sources):
            raise ValueError(f"{len(seeds)} seeds for {len(sources)} inputs")
        strategy = build_strategy(options, xla_clusters=self.xla_clusters)
        compiled = self._function(strategy, options, return_attention)
        results: list[list[Hypothesis]] = [[] for _ in sources]
        for chunk in _length_sorted_chunks(sources, self.max_batch_size):
            rows = self._batch_rows([sources[i] for i in chunk])
            row_seeds = None if seeds is None else self._batch_rows([seeds[i] for i in chunk])
            draws = _draws(strategy, rows, options, row_seeds)
            params = DecodeParams.from_options(options, draws)
            bucket = LENGTH_BUCKET if self.jit_compile else 1
            output = compiled(_padded(rows, bucket), params)
            ids, scores, lengths, attention = (np.asarray(t) for t in output)
            for row, index in enumerate(chunk):
                results[index] = _hypotheses(
                    ids[row], scores[row], lengths[row], attention[row],
                    len(sources[index]), options.n_best,
                )
        return results

    def _batch_rows(self, sources: list[T]) -> list[T]:
        """The sources of one batch; under XLA, padded to a power-of-two count with copies of
        the last one (their results are dropped), bounding the number of compilations."""
        if not self.jit_compile:
            return sources
        rows = min(1 << (len(sources) - 1).bit_length(), self.max_batch_size)
        return sources + [sources[-1]] * (rows - len(sources))

    def _function(
        self, strategy: Strategy, options: DecodeOptions, return_attention: bool
    ) -> CompiledDecode:
        key = (strategy.key, options.no_repeat_ngram, return_attention)
        if key in self._compiled:
            self._compiled.move_to_end(key)
        else:

            def decode_batch(source_ids: tf.Tensor, params: DecodeParams) -> DecodeOutput:
                self.trace_count += 1  # Python side effect: runs once per trace
                return dynamic_decode(
                    self.model, strategy, source_ids, params,
                    no_repeat_ngram=options.no_repeat_ngram,
                    return_attention=return_attention,
                    compact_rows=not self.jit_compile,
                )

            self._compiled[key] = tf.function(
                decode_batch,
                input_signature=[tf.TensorSpec([None, None], tf.int32), DecodeParams.signature()],
                jit_compile=self.jit_compile,
                autograph=False,  # the loop is an explicit tf.while_loop; no Python control flow
            )
        return self._compiled[key]


def _padded(sources: list[list[int]], bucket: int = 1) -> np.ndarray:
    """PAD-padded [B, S] ids, S rounded up to a multiple of `bucket`."""
    length = -(-max(len(s) for s in sources) // bucket) * bucket
    batch = np.full((len(sources), length), PAD_ID, np.int32)
    for row, source in enumerate(sources):
        batch[row, : len(source)] = source
    return batch


def _draws(
    strategy: Strategy,
    rows: list[list[int]],
    options: DecodeOptions,
    seeds: Sequence[int | None] | None = None,
) -> np.ndarray:
    """The sampler's uniforms for these rows, or an empty [rows * width, 0] array when the
    strategy does not sample."""
    if not strategy.random:
        return np.zeros((len(rows) * strategy.width, 0), np.float32)
    return sampling_draws(rows, options.seed, strategy.width, options.max_length, seeds)


def _as_lists(source_ids: Sequence[Sequence[int]] | np.ndarray) -> list[list[int]]:
    """Id lists without padding; rejects empty inputs, which have nothing to attend to."""
    if isinstance(source_ids, np.ndarray):
        if source_ids.ndim != 2:
            raise ValueError(f"source_ids must be a 2-D [batch, length] array: {source_ids.shape}")
        sources = [[int(t) for t in row if t != PAD_ID] for row in source_ids]
    else:
        sources = [[int(t) for t in row] for row in source_ids]
    for index, source in enumerate(sources):
        if not source:
            raise ValueError(f"source {index} is empty")
    return sources


def _length_sorted_chunks(sources: list[list[int]], size: int) -> Iterator[list[int]]:
    """Indices of `sources` in batches of similar length (less padding per batch)."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    for start in range(0, len(order), size):
        yield order[start : start + size]


def _hypotheses(
    ids: np.ndarray, scores: np.ndarray, lengths: np.ndarray, attention: np.ndarray,
    source_len: int, n_best: int,
) -> list[Hypothesis]:
    """One input's hypotheses, trimmed to their own length and the real source length.

    Beam slots that never held a valid hypothesis (score -inf, possible only with very small
    vocabularies) are dropped, except that the best one is always returned.
    """
    hypotheses: list[Hypothesis] = []
    for rank in range(n_best):
        if rank > 0 and not np.isfinite(scores[rank]):
            break
        tokens: list[Any] = ids[rank, : lengths[rank]].tolist()
        if tokens and tokens[-1] == EOS_ID:
            tokens.pop()
        hypotheses.append(Hypothesis(
            ids=tokens,
            score=float(scores[rank]),
            attention=attention[rank, : len(tokens), :source_len],
        ))
    return hypotheses
