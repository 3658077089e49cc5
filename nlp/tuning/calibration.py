"""Each ranker's score calibrated on the candidates the chat ranks (`s2s tune-decoding`).

Why these candidates: a calibration is a probability on one scale among candidates drawn as
its examples were (`nlp.metrics.calibration`), and the chat's `--fallback-threshold`
compares it on the candidates the bot ranks: the replies retrieved for the message (and the
decoder's, where the configuration generates), scored with the weights the options carry.
So each validation post gets the pool the bot would rank with the configuration the tuner
chose (`Generator.pools`, read, decoded and seeded as the bot does, `nlp.chat.offline`),
with the reply people gave added to it (a copy of it in the pool is dropped, or it would
be a negative too), and each ranker scores that pool with the weights the chat uses
(`with_ranker`). The reply people gave is the positive, every other candidate a negative.

What the probability then says: that a candidate is the reply the person gave, among the
chat's candidates and it. A retrieved reply that fits but is not that reply counts as a
miss, so the probability understates how often a reply fits, and a threshold on it errs
towards the fallback line rather than towards nonsense. The rerank=retrieval order has no
calibration (`nlp.generation.confidence` says why).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nlp.chat.offline import bot_batches, bot_options
from nlp.corpus.records import Pair
from nlp.decoding.options import DecodeOptions
from nlp.generation.confidence import RankerCalibration, fit_fields
from nlp.generation.mmi import COMPANION_KIND
from nlp.generation.rankers import FUSED
from nlp.generation.text_generator import Generation
from nlp.metrics.calibration import fit_calibration
from nlp.tuning.search import with_ranker

if TYPE_CHECKING:
    from nlp.generation.generator import Generator


@dataclass(frozen=True)
class Pools:
    """The candidates of each post the bot would rank, with the reply people gave among
    them (`labels` true for it), as the rankers read them."""

    texts: list[str]  # the posts as the bot reads them
    inputs: list[str]  # what the chat model reads for each (`Generator.pools`)
    candidates: list[list[Generation]]
    labels: list[bool]  # one a candidate, the posts' candidates one after the other

    @property
    def posts(self) -> int:
        return len(self.texts)


def chat_pools(
    generator: Generator, pairs: Sequence[Pair], options: DecodeOptions, batch_size: int = 64
) -> Pools:
    """The bot's candidate pool for each pair's post under `options` (the model's settings,
    widened as the bot widens them: `bot_options`), the pair's reply added; a post left
    without other candidates (nothing retrieved, nothing decoded) is left out."""
    decode = bot_options(options)
    as_output = generator.codec.as_output
    pools = Pools([], [], [], [])
    for start, (_, texts, seeds) in zip(range(0, len(pairs), batch_size),
                                        bot_batches([p.source for p in pairs], decode, batch_size),
                                        strict=True):
        inputs, found = generator.pools(texts, decode, seeds)
        for pair, text, read, candidates in zip(pairs[start:start + batch_size], texts, inputs,
                                                found, strict=True):
            gold = as_output(pair.target)
            others = [g for g in candidates if as_output(g.text) != gold]
            if not others:
                continue
            pools.texts.append(text)
            pools.inputs.append(read)
            pools.candidates.append([people_reply(generator, pair.target), *others])
            pools.labels.extend([True] + [False] * len(others))
    return pools


def people_reply(generator: Generator, reply: str) -> Generation:
    """The reply people gave as a candidate: written by no decoder, like a retrieved one
    (so every candidate beside it is scored teacher-forced, `rankers.teacher_forced`), and
    in the form a retrieved one has (`Candidates.retrieved`: `as_output`), so a ranker that
    reads the text (the sentence encoder) sees every candidate of the pool alike."""
    tokens, text = generator.codec.tokens_and_output(reply)  # one tokenizing pass
    return Generation(text, math.nan, tokens, [], np.zeros((0, 0), np.float32),
                      provenance="retrieved")


def calibrated_rankers(generator: Generator) -> list[str]:
    """The rankers this bundle can rank by whose score a calibration reads: the model's
    (its sum and per token), MMI where its companion is loaded, the dual encoder and it with
    BM25 where the bundle has them."""
    candidates = generator.candidates
    rankers = ["none", "likelihood"]
    rankers += [name for name, kind in COMPANION_KIND.items() if kind in generator.companions]
    if candidates.has_dual_encoder:
        rankers.append("dual-encoder")
        if candidates.has_index:
            rankers.append(FUSED)
    return rankers


def ranker_calibrations(
    generator: Generator,
    pairs: Sequence[Pair],
    options: DecodeOptions,
    weights: Mapping[str, Mapping[str, Any]] | None,
    batch_size: int = 64,
) -> dict[str, dict[str, Any]]:
    """Per ranker (`calibrated_rankers`), its raw score calibrated on the pools of
    `chat_pools` with `options` (the configuration the tuner chose), ranked with the weights
    chosen for it (`weights`, else the defaults), as `RankerCalibration.to_json`; a ranker
    whose scores cannot be fitted (no pool) is left out, and says so."""
    pools = chat_pools(generator, pairs, options, batch_size)
    decode = bot_options(options)
    fitted: dict[str, dict[str, Any]] = {}
    for ranker in calibrated_rankers(generator):
        ranked = with_ranker(decode, ranker, weights)
        raw: list[float] = []
        for start in range(0, pools.posts, batch_size):
            part = slice(start, start + batch_size)
            _, scores = generator.rankers.scores(pools.texts[part], pools.inputs[part],
                                                 pools.candidates[part], ranked)
            raw.extend(scores)
        try:
            calibration = fit_calibration(raw, pools.labels)
        except ValueError as exc:
            print(f"calibration of {ranker}: none ({exc})", file=sys.stderr)
            continue
        fitted[ranker] = RankerCalibration(
            ranker, calibration, fit_fields(ranked, generator.candidates.decodes(ranked))
        ).to_json()
        print(f"calibration of {ranker}: on {calibration.pairs} candidates of {pools.posts} "
              "validation posts", file=sys.stderr)
    return fitted
