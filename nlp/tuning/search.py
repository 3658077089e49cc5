"""The search behind `s2s tune-decoding`: coordinate ascent over decode options, in a budget.

Why coordinate ascent and not a full grid: five settings with three or four values each are
hundreds of configurations, each one a full decode of the validation sample. Starting from the
model's current settings and trying one setting at a time (keeping a change only when the
objective improves) needs about fifteen decodes for a pass, finds the large effects (n-gram
blocking, length penalty) first, and can stop cleanly when the time budget runs out with the
best configuration found so far.

TensorFlow-free: it sees a `generate(sources, options) -> outputs` function and an objective,
so a test can drive it with a scripted generator.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nlp.corpus.records import Pair
from nlp.decoding.options import DecodeOptions
from nlp.generation.decode_settings import (
    RETRIEVED_OR_GENERATED,
    rerank_weights,
)
from nlp.generation.mmi import COMPANION_KIND
from nlp.metrics.chat_metrics import (
    DIVERSITY_BLOCK,
    bleu_tokenize,
    chat_unit,
    corpus_bleu,
    distinct_n,
    per_block,
    top_reply_repeats,
)
from nlp.metrics.repetition import repetition_shares
from nlp.metrics.rouge import mean_rouge_l
from nlp.text.normalize import normalize_text

Generate = Callable[[Sequence[str], DecodeOptions], list[str]]
Objective = Callable[[Sequence[str], Sequence[Pair]], float]  # outputs, pairs -> higher is better


@dataclass(frozen=True)
class TuningContext:
    """What an objective may use besides the outputs: the validation pairs and the generate
    function being tuned."""

    pairs: Sequence[Pair]
    generate: Generate
    # A reference as the model would write it (`TextCodec.as_output`), so that outputs and
    # references are compared on the same footing (lowercased and truecased alike).
    reference: Callable[[str], str] = normalize_text
    # chat: the mean embedding-average similarity of outputs to references (0-1), when the
    # word vectors to measure it are at hand (`nlp.vectors.similarity`)
    fit: Callable[[Sequence[str], Sequence[str]], float] | None = None


# A headline that repeats a content word or a bigram reads as a stutter; a product may let
# at most this share of its headlines do so (the figure `s2s evaluate --metric rouge` shows).
MAX_REPEAT_SHARE = 0.02


def rouge_l_objective(outputs: Sequence[str], pairs: Sequence[Pair]) -> float:
    """ROUGE-L F1 minus the share of repeating headlines above MAX_REPEAT_SHARE: decoding
    settings that stutter more lose what they gain, so the search prefers n-gram blocking
    that stops it. (Model selection during training uses plain `mean_rouge_l`: repetition is
    the decoder's to stop, and an early model stutters under any settings.)"""
    excess = repetition_shares(outputs)["repeat_share"] - MAX_REPEAT_SHARE
    return mean_rouge_l(outputs, pairs) - max(0.0, excess)


# The chat objective. Replies people want to read are varied and not the same few stock
# lines, and among varied ones the best fit the message and say what people said. So a
# configuration whose replies are diverse enough (distinct-2 >= MIN_DISTINCT_2 and the five
# most frequent replies' repeats <= MAX_TOP5_REPEATS, both per block of DIVERSITY_BLOCK
# replies, so the floor means the same on 200 validation posts as on 1,000 test posts; the
# repeats, not the share, so that it also holds on fewer posts than a block:
# `top_reply_repeats`) scores QUALIFIED plus two percentages: corpus BLEU-2 against the
# validation replies (word overlap; its brevity penalty punishes replies much shorter than
# people's) and the embedding-average similarity of each reply to its reference (Liu et al.
# 2016: related words count, so a reply that means what people answered scores though it
# says it otherwise; with the context's `fit`, English only where no vectors are named; a
# reply without word vectors scores 0 there). Configurations below the floor
# score distinct-2 - top-5 repeats (range [-1, 1]) and lose to every one above it.
# Why not the model's likelihood of the chosen replies: among re-ranked samples the likeliest
# are the shortest ("Oh.", "No, I see."), with half the words and less overlap with people's
# replies than single samples.
PLAIN_BEAM = DecodeOptions(strategy="beam", beam_size=5)
MIN_DISTINCT_2 = 0.30
MAX_TOP5_REPEATS = 0.05  # in a block of 100 with five different top replies: a share of 0.10
QUALIFIED = 10.0  # above any distinct-2 - top-5 repeats
CHAT_OBJECTIVE_NAME = (
    f"10 + BLEU-2 + 100 x embedding average if distinct-2 >= {MIN_DISTINCT_2} and top-5 "
    f"repeats <= {MAX_TOP5_REPEATS} per {DIVERSITY_BLOCK} replies, else distinct-2 - top-5 "
    "repeats"
)


def chat_objective(context: TuningContext) -> Objective:
    """The replies closest to people's (in words and in meaning) among diverse-enough
    configurations, else the most diverse."""
    posts = [pair.source for pair in context.pairs]
    unit = chat_unit(posts, [pair.target for pair in context.pairs])

    def objective(outputs: Sequence[str], pairs: Sequence[Pair]) -> float:
        distinct = per_block(outputs, lambda block: distinct_n(block, 2, unit))
        top5 = per_block(outputs, top_reply_repeats)
        if distinct < MIN_DISTINCT_2 or top5 > MAX_TOP5_REPEATS:
            return distinct - top5
        references = [context.reference(pair.target) for pair in pairs]
        fit = context.fit(outputs, references) if context.fit is not None else 0.0
        return QUALIFIED + corpus_bleu(outputs, references, 2, bleu_tokenize(unit)) + 100 * fit

    return objective


# data.task -> (name shown in the table, objective built for the run being tuned).
OBJECTIVES: dict[str, tuple[str, Callable[[TuningContext], Objective]]] = {
    "headline": ("ROUGE-L F1 - excess repeats", lambda context: rouge_l_objective),
    "chat": (CHAT_OBJECTIVE_NAME, chat_objective),
}


# The chat configurations, by the names the chat benchmark's table uses; each with the
# re-ranking it needs ("" = none; its companion: `COMPANION_KIND`). Sampling is seeded per
# chat by the bot (`nlp.chat.offline`). Re-ranking configurations rank per reply token with
# the weights validation Hits chose (`nlp.tuning.rerank_weights`), so they prefer the
# candidate that score finds fits best.
CHAT_CONFIGURATIONS: dict[str, tuple[str, DecodeOptions]] = {
    "plain beam": ("", PLAIN_BEAM),
    "sampling": ("", DecodeOptions(strategy="sample", temperature=0.8, top_p=0.9)),
    # Colder single samples lie nearer the likeliest replies: maybe nearer people's too
    # (BLEU-2), maybe too few distinct ones. The objective decides, on validation posts.
    "sampling, T 0.6": ("", DecodeOptions(strategy="sample", temperature=0.6, top_p=0.9)),
    "sampling, T 0.45": ("", DecodeOptions(strategy="sample", temperature=0.45, top_p=0.9)),
    "sample-and-rerank": ("", DecodeOptions(strategy="sample", top_p=0.9, n_best=8)),
    "sample-and-rerank, T 0.7": (
        "",
        DecodeOptions(strategy="sample", temperature=0.7, top_p=0.9, n_best=8),
    ),
    "diverse beam": (
        "",
        DecodeOptions(strategy="diverse_beam", beam_size=6, beam_groups=3, diversity_penalty=0.5),
    ),
    "MMI anti-LM": ("mmi-antilm", DecodeOptions(beam_size=8, n_best=8)),
    "sample-and-rerank, MMI anti-LM": (
        "mmi-antilm",
        DecodeOptions(strategy="sample", top_p=0.9, n_best=8),
    ),
    "MMI bidi": ("mmi-bidi", DecodeOptions(beam_size=8, n_best=8)),
    "sample-and-rerank, MMI bidi": (
        "mmi-bidi",
        DecodeOptions(strategy="sample", top_p=0.9, n_best=8),
    ),
}


# With a retrieval index the bot sends what people wrote to the training posts nearest the
# message where the best one's post matches it well enough, and the model's own beam reply
# elsewhere (`RETRIEVED_OR_GENERATED`, whose threshold was chosen by rated SSA on validation
# posts; neither Hits nor this tuner's objective can tell a sensible reply from a keyword
# match). Which retrieved reply competes: `chat_candidates`. A model without an index still
# chooses among the decodings above.
RETRIEVAL_CONFIGURATIONS: dict[str, DecodeOptions] = {
    "retrieved or generated": DecodeOptions(**RETRIEVED_OR_GENERATED),
}


def chat_candidates(
    companions: Sequence[str] = (),
    weights: Mapping[str, Mapping[str, Any]] | None = None,
    ranker: str = "",
    retrieval: bool = False,
) -> dict[str, DecodeOptions]:
    """The chat configurations tried. With a `ranker` (the model has a retrieval index; the
    ranker validation Hits chose): the retrieved replies, generated ones left out
    (`RETRIEVAL_CONFIGURATIONS`), in the order of `RETRIEVED_OR_GENERATED` (a ranker that
    reads the posts the replies answered) where the index keeps its posts (`retrieval`),
    else ranked by `ranker`. Without: plain beam first, then sampling,
    sample-and-rerank, diverse beam, and MMI re-ranking for each companion kind the model has
    ("lm", "reverse"), with `weights` per re-ranking (those validation Hits chose; else the
    defaults).

    Why that order alone, and not whichever the objective prefers: people rated the picks
    of an order by the posts more sensible than those of the ranker Hits chose on the
    validation posts of both recipes, English and Chinese (docs/BENCHMARKS.md "Rated
    sense"), and the objective, which reads BLEU and embedding similarity, could not tell:
    in Chinese it preferred the other ranker. Hits cannot score it (a true reply's post is
    the message itself)."""
    if ranker:
        chosen = RETRIEVED_OR_GENERATED["rerank"] if retrieval else ranker
        return {f"{name}, {chosen}": with_ranker(options, chosen, weights)
                for name, options in RETRIEVAL_CONFIGURATIONS.items()}
    candidates: dict[str, DecodeOptions] = {}
    for name, (rerank, options) in CHAT_CONFIGURATIONS.items():
        if not rerank:
            candidates[name] = options
        elif COMPANION_KIND[rerank] in companions:
            candidates[name] = with_ranker(options, rerank, weights)
    return candidates


def with_ranker(
    options: DecodeOptions, ranker: str, weights: Mapping[str, Mapping[str, Any]] | None
) -> DecodeOptions:
    """`options` ranking by `ranker`, per reply token, with its chosen weights (MMI, BM25)."""
    extra = rerank_weights(weights, ranker)
    return dataclasses.replace(options, rerank=ranker, mmi_per_token=True, **extra)


def objective_for(task: str) -> tuple[str, Callable[[TuningContext], Objective]]:
    """The task's objective, or ValueError saying there is none yet."""
    if task not in OBJECTIVES:
        raise ValueError(
            f"tune-decoding has no objective for data.task={task!r} yet (it has one for: "
            f"{', '.join(OBJECTIVES)}); the model keeps its current decoding settings"
        )
    return OBJECTIVES[task]


@dataclass(frozen=True)
class SearchSpace:
    """Values tried per setting, in the order the settings are visited."""

    no_repeat_ngram: tuple[int, ...] = (0, 1, 2, 3, 4)  # 1: no word twice (headlines)
    length_penalty: tuple[float, ...] = (0.0, 0.6, 1.0, 1.5)
    beam_size: tuple[int, ...] = (1, 3, 5, 8)
    min_length: tuple[int, ...] = (0,)
    max_length_ratio: tuple[float, ...] = (0.0,)

    def settings(self) -> list[tuple[str, tuple[float, ...]]]:
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]


def space_for(
    target_lengths: Sequence[int], source_lengths: Sequence[int], max_length: int
) -> SearchSpace:
    """Length settings from the validation pairs (in the model's tokens): minimum lengths up to
    the shortest quarter of the references, and a length cap at the ratio that 95% of the
    references stay under (or none)."""
    targets = sorted(target_lengths)
    quarter = min(targets[len(targets) // 4], max_length) if targets else 0
    ratios = sorted(t / max(1, s) for t, s in zip(target_lengths, source_lengths, strict=True))
    cap = math.ceil(100 * ratios[int(0.95 * (len(ratios) - 1))]) / 100 if ratios else 0.0
    return SearchSpace(
        min_length=tuple(sorted({0, quarter // 2, quarter})),
        max_length_ratio=tuple(sorted({0.0, cap})),
    )


@dataclass(frozen=True)
class Trial:
    options: DecodeOptions
    score: float
    seconds: float


@dataclass
class SearchResult:
    trials: list[Trial]
    start: Trial
    best: Trial
    stopped_early: bool  # the budget ran out before the pass was complete


def tune(
    generate: Generate,
    pairs: Sequence[Pair],
    start: DecodeOptions,
    objective: Objective,
    space: SearchSpace,
    budget_seconds: float,
    *,
    on_trial: Callable[[Trial], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """One pass of coordinate ascent from `start`; a trial starts only if the last one's
    duration still fits in the budget (the first one always runs)."""
    sources = [pair.source for pair in pairs]
    began = clock()
    trials: list[Trial] = []
    tried: dict[str, Trial] = {}

    def run(options: DecodeOptions) -> Trial:
        key = repr(options)
        if key not in tried:
            t0 = clock()
            score = objective(generate(sources, options), pairs)
            tried[key] = Trial(options, score, clock() - t0)
            trials.append(tried[key])
            if on_trial is not None:
                on_trial(tried[key])
        return tried[key]

    start = dataclasses.replace(start, n_best=1, min_length=min(start.min_length, start.max_length))
    first = best = run(start)
    for name, values in space.settings():
        for value in values:
            candidate = _with(best.options, name, value)
            if candidate is None or repr(candidate) in tried:
                continue
            if clock() - began + trials[-1].seconds > budget_seconds:
                return SearchResult(trials, first, best, stopped_early=True)
            trial = run(candidate)
            if trial.score > best.score + 1e-9:
                best = trial
    return SearchResult(trials, first, best, stopped_early=False)


def try_candidates(
    generate: Generate,
    pairs: Sequence[Pair],
    candidates: Sequence[DecodeOptions],
    objective: Objective,
    budget_seconds: float,
    *,
    on_trial: Callable[[Trial], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """Score whole configurations in order (the first is the start); a trial starts only if
    the last one's duration still fits in the budget. Used where the choices are distinct
    strategies (chat) rather than one setting at a time."""
    sources = [pair.source for pair in pairs]
    began = clock()
    trials: list[Trial] = []
    for options in candidates:
        if trials and clock() - began + trials[-1].seconds > budget_seconds:
            break
        t0 = clock()
        score = objective(generate(sources, options), pairs)
        trials.append(Trial(options, score, clock() - t0))
        if on_trial is not None:
            on_trial(trials[-1])
    best = max(trials, key=lambda trial: trial.score)  # earliest wins ties
    return SearchResult(trials, trials[0], best, stopped_early=len(trials) < len(candidates))


def _with(options: DecodeOptions, name: str, value: float) -> DecodeOptions | None:
    """`options` with one setting changed, or None when that makes no valid configuration.
    Beam size 1 is greedy search (same output, no beam bookkeeping)."""
    changes: dict[str, Any] = {name: value}
    if name == "beam_size":
        changes["strategy"] = "greedy" if value == 1 else "beam"
    if options.strategy == "sample":
        return None if name == "beam_size" else dataclasses.replace(options, **changes)
    try:
        return dataclasses.replace(options, **changes)
    except ValueError:  # e.g. a minimum length above the maximum
        return None
