"""From pairs to training examples, tokenizing every text once.

Tokenizing is what preparing a corpus costs (jieba above all), so each text is tokenized
exactly once: `tokenize_pairs` turns the training and validation pairs into token lists in one
pass, the vocabulary is counted from the training pairs' token lists, and the ids are encoded
from the same lists (`encode_examples`). `prepare_examples` is that path for a new run or a
resumed one; `s2s retrain` and evaluation call the same pieces.

Above `POOL_MIN_PAIRS` pairs the tokenizing is spread over `pool_workers()` processes, a chunk
of `CHUNK_PAIRS` pairs at a time, with only a few chunks on their way at once, so memory holds
the pairs and their token lists but never a second copy of the corpus in flight. Each worker
gets a copy of the codec's text settings and tokenizer in its initializer (sentencepiece
models travel as bytes, jieba loads its dictionary there), so a worker tokenizes exactly as
this process would; results come back in the pairs' order.

This module imports no TensorFlow: the workers are spawned (`nlp.util.processes`, the start
method of every pool of the project: a fresh interpreter, because forking a process whose
TensorFlow threads may hold locks can deadlock the child) and import it, and a worker that
imported TensorFlow would pay seconds and hundreds of MiB for nothing. As with any spawned
pool, a script that trains on a large corpus must guard its entry point
(`if __name__ == "__main__":`): each worker imports the main module.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from nlp.control import SpecificityBuckets, marked_groups
from nlp.corpus.records import Pair
from nlp.generation.codec import PairTokens, TextCodec, count_tokens
from nlp.text.truecase import TruecaseCounts
from nlp.tokenizers.specials import EOS_ID
from nlp.tokenizers.vocab import Vocabulary
from nlp.util.config import ExperimentConfig
from nlp.util.processes import worker_context

if TYPE_CHECKING:
    from nlp.training.data import Example

# Fewer pairs than this are tokenized in this process. Why: a worker costs an interpreter
# start, the entry point's and the text modules' imports and (jieba) a dictionary load, a
# second or two, about what tokenizing a few thousand short chat pairs costs; below this size
# the pool would save little, and tests and small corpora never start one.
POOL_MIN_PAIRS = 20_000
# Pairs a worker tokenizes per task. Why: large enough that sending pairs and returning token
# lists is a small part of a task, small enough that the chunks on their way (two per worker)
# hold a sliver of the corpus.
CHUNK_PAIRS = 2_000
_CHUNKS_PER_WORKER_IN_FLIGHT = 2


def pool_workers() -> int:
    """How many processes tokenize a large corpus: every core this process may run on
    (tokenizing is pure Python, one core per process)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def workers_for(
    pairs: int, workers: int | None = None, min_pool_pairs: int | None = None
) -> int:
    """How many processes `tokenize_pairs` uses for `pairs` pairs: 1 (this one) below
    `min_pool_pairs` (default `POOL_MIN_PAIRS`), else `workers` (default `pool_workers()`)."""
    if pairs < (POOL_MIN_PAIRS if min_pool_pairs is None else min_pool_pairs):
        return 1
    return pool_workers() if workers is None else max(1, workers)


@dataclass
class Tokenized:
    """`tokenize_pairs`' result: each group's token lists in its pairs' order, the first
    group's `TruecaseCounts` when they were asked for, and how many processes tokenized."""

    groups: list[list[PairTokens]]
    truecase: TruecaseCounts | None
    workers: int


def tokenize_pairs(
    codec: TextCodec,
    groups: Sequence[Sequence[Pair]],
    *,
    truecase: bool = False,
    workers: int | None = None,
    min_pool_pairs: int | None = None,
) -> Tokenized:
    """Every pair of every group as `codec.pair_tokens` gives it, each text tokenized once.

    `truecase`: also count the first group's (the training pairs') `TruecaseCounts`.
    `workers` (default `pool_workers()`) processes tokenize when the groups hold at least
    `min_pool_pairs` (default `POOL_MIN_PAIRS`) pairs; otherwise, or with one worker, this
    process does. Equal tokens share one string object (the token lists of a large corpus
    would otherwise hold each occurrence as its own string, several times the memory).
    """
    workers = workers_for(sum(len(group) for group in groups), workers, min_pool_pairs)
    tasks = [
        (index, group[start : start + CHUNK_PAIRS], truecase and index == 0)
        for index, group in enumerate(groups)
        for start in range(0, len(group), CHUNK_PAIRS)
    ]
    results = _in_process(codec, tasks) if workers == 1 else _in_pool(codec, tasks, workers)
    tokenized = Tokenized([[] for _ in groups], TruecaseCounts() if truecase else None, workers)
    shared: dict[str, str] = {}
    intern = shared.setdefault
    for (index, _, _), (tokens, counts) in zip(tasks, results, strict=True):
        tokenized.groups[index].extend(
            ([intern(t, t) for t in source], [intern(t, t) for t in target])
            for source, target in tokens
        )
        if counts is not None and tokenized.truecase is not None:
            tokenized.truecase.update(counts)
    return tokenized


_Task = tuple[int, Sequence[Pair], bool]  # (group, pairs, count truecase)
_Result = tuple[list[PairTokens], TruecaseCounts | None]


def _in_process(codec: TextCodec, tasks: list[_Task]) -> Iterator[_Result]:
    for _, pairs, truecase in tasks:
        yield codec.tokenize_chunk(pairs, truecase)


def _in_pool(codec: TextCodec, tasks: list[_Task], workers: int) -> Iterator[_Result]:
    """The tasks' results in order, from `workers` spawned processes, with at most
    `_CHUNKS_PER_WORKER_IN_FLIGHT` tasks a worker submitted and not yet collected."""
    # Only what tokenizing needs travels: the settings and the tokenizer, not the vocabulary.
    text_codec = TextCodec(codec.config, codec.tokenizer, Vocabulary())
    with ProcessPoolExecutor(
        workers, mp_context=worker_context(), initializer=_start_worker, initargs=(text_codec,)
    ) as pool:
        pending: deque[Future[_Result]] = deque()
        for _, pairs, truecase in tasks:
            pending.append(pool.submit(_tokenize_chunk, pairs, truecase))
            if len(pending) >= workers * _CHUNKS_PER_WORKER_IN_FLIGHT:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


_worker_codec: TextCodec | None = None  # a pool worker's codec, set by `_start_worker`


def _start_worker(codec: TextCodec) -> None:
    """Keep the codec for the worker's tasks and set its tokenizer up now (jieba's dictionary
    loads on the first text), so no task pays for it."""
    global _worker_codec
    _worker_codec = codec
    codec.pair_tokens(Pair("中文 text", "中文 text"))


def _tokenize_chunk(pairs: Sequence[Pair], truecase: bool) -> _Result:
    if _worker_codec is None:
        raise RuntimeError("a tokenizing worker was started without its codec")
    return _worker_codec.tokenize_chunk(pairs, truecase)


def encode_examples(codec: TextCodec, tokens: Sequence[PairTokens]) -> list[Example]:
    """The pairs' ids (`codec.token_ids`); pairs whose source or target tokenizes to nothing
    are dropped."""
    encoded = (codec.token_ids(pair) for pair in tokens)
    return [(s, t) for s, t in encoded if s and t and t != [EOS_ID]]


def examples_of(
    codec: TextCodec, pairs: Sequence[Pair], *, workers: int | None = None
) -> list[Example]:
    """Encoded pairs for a codec that is ready (evaluation, a resumed run's validation)."""
    return encode_examples(codec, tokenize_pairs(codec, [pairs], workers=workers).groups[0])


Stage = Callable[[str], None]


class Prepared(NamedTuple):
    """`prepare_examples`' result. `specificity`: the training replies' specificity buckets
    when the model is trained on them (`data.specificity_buckets`; each source then ends with
    its reply's bucket marker, `nlp.control`), else None."""

    codec: TextCodec
    train: list[Example]
    valid: list[Example]
    specificity: SpecificityBuckets | None


def prepare_examples(
    config: ExperimentConfig,
    train_pairs: Sequence[Pair],
    valid_pairs: Sequence[Pair],
    codec: TextCodec | None = None,
    *,
    workers: int | None = None,
    stage: Stage | None = None,
) -> Prepared:
    """The codec, training and validation examples for `s2s train`.

    Without `codec` (a new run) the tokenizer is trained if it learns (sentencepiece, on the
    training texts, before anything is tokenized), then both sides' pairs are tokenized once,
    the vocabulary (and the truecaser) come from the training pairs' tokens, and both are
    encoded from the same tokens. With `codec` (a resumed run) its vocabulary is kept. A
    model trained on specificity buckets gets them from the training replies' tokens, and
    its sources their markers, before the vocabulary is counted (`nlp.control`).
    `stage(name)` is called as each step ends ("tokenizer fit", "tokenize", "vocabulary",
    "encode"), for the data pipeline benchmark's timings.
    """
    done = stage or (lambda name: None)
    fit = codec is None
    if codec is None:
        codec = TextCodec.untrained(config, train_pairs)
    done("tokenizer fit")
    tokenized = tokenize_pairs(codec, [train_pairs, valid_pairs], truecase=fit, workers=workers)
    specificity, (train_tokens, valid_tokens) = marked_groups(
        config.data, [reply for _, reply in tokenized.groups[0]], tokenized.groups)
    done("tokenize")
    if fit:
        codec.fit_vocabulary(count_tokens(train_tokens), tokenized.truecase)
    done("vocabulary")
    train_examples = encode_examples(codec, train_tokens)
    valid_examples = encode_examples(codec, valid_tokens)
    done("encode")
    return Prepared(codec, train_examples, valid_examples, specificity)
