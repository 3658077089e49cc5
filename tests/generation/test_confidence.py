"""A candidate's confidence (`nlp.generation.confidence`): every ranker's raw score, on its own
scale, through the calibration the bundle stores for it, where that calibration holds for the
options; a fallback threshold is refused where none holds, saying why."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.decoding.options import OptionError
from nlp.generation.confidence import RankerCalibration, fit_fields
from nlp.generation.decode_settings import CALIBRATION, DecodeSettings
from nlp.generation.mmi import mmi_score
from nlp.generation.rankers import FUSED, fused
from nlp.metrics.calibration import Calibration

POST = "do you like to cook?"


class WordCountCompanion:
    """Test double: a companion whose log-probability of each reply token falls with the
    reply's length, so MMI's score differs from the model's."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def token_log_probs(self, pairs: Sequence[Pair]) -> list[np.ndarray]:
        return [np.full(len(pair.target.split()) + 1, -0.1 * len(pair.target)) for pair in pairs]


def generator_of(tiny_bundle: Path):  # type: ignore[no-untyped-def]
    from nlp.generation.bundle import load_bundle
    from nlp.generation.generator import Generator

    companions = [WordCountCompanion("lm"), WordCountCompanion("reverse")]
    return Generator(load_bundle(tiny_bundle), companions=companions)


def calibrated(generator, ranker: str, calibration: Calibration,  # type: ignore[no-untyped-def]
               fitted_with: dict[str, object]) -> None:
    """The generator's bundle with `calibration` stored for `ranker`, fitted with those
    options."""
    stored = RankerCalibration(ranker, calibration, fitted_with).to_json()
    settings = DecodeSettings(DecodeOptions(), "tuned", {CALIBRATION: {ranker: stored}})
    generator.candidates.bundle = dataclasses.replace(generator.bundle, decoding=settings)


def raw_scores(generator, ranker: str, texts: list[str],  # type: ignore[no-untyped-def]
               options: DecodeOptions) -> np.ndarray:
    """Each reply's score on `ranker`'s own scale, computed here from its parts: the model's
    teacher-forced sum or mean, MMI of that sum with the companion, the dual encoder's
    cosine, it plus the weighted BM25 scaled to the best."""
    from nlp.generation.candidates import token_ranking_ids

    codec = generator.codec
    forced = generator.candidates.forward.token_log_probs([Pair(POST, text) for text in texts])
    sums = np.array([float(row.sum()) for row in forced])
    if ranker == "none":
        return sums
    if ranker == "likelihood":
        return np.array([float(row.mean()) for row in forced])
    if ranker.startswith("mmi-"):
        kind = "lm" if ranker == "mmi-antilm" else "reverse"
        extra = generator.companions[kind].token_log_probs([Pair(POST, t) for t in texts])
        return np.array([mmi_score(total, scores, len(row), options)
                         for total, scores, row in zip(sums, extra, forced, strict=True)])
    replies = [codec.text_tokens(text) for text in texts]
    (cosines,) = generator.candidates.dual_encoder.scores(
        [token_ranking_ids(codec, codec.text_tokens(POST))],
        [[token_ranking_ids(codec, tokens) for tokens in replies]])
    if ranker == "dual-encoder":
        return np.asarray(cosines, np.float64)
    bm25 = generator.candidates.index.candidate_scores(codec.text_tokens(POST), replies)
    return fused(np.asarray(cosines), bm25, options.bm25_weight)


@pytest.mark.parametrize(
    "ranker", ["none", "likelihood", "mmi-antilm", "mmi-bidi", "dual-encoder", FUSED])
def test_every_ranker_s_raw_score_goes_through_its_own_calibration(
    tiny_bundle: Path, ranker: str
) -> None:
    """The decoder's beam with a length penalty (its own score is not the model's sum): under
    a threshold every candidate is scored as its calibration was fitted, teacher-forced, and
    its confidence is the calibration's probability of its raw score on the ranker's scale."""
    generator = generator_of(tiny_bundle)
    options = DecodeOptions(strategy="beam", beam_size=4, n_best=4, length_penalty=1.0,
                            rerank=ranker, mmi_lambda=0.3, mmi_per_token=True,
                            bm25_weight=0.5, fallback_threshold=0.01)
    calibration = Calibration(slope=0.7, intercept=0.4)
    calibrated(generator, ranker, calibration, fit_fields(options, decodes=True))
    (ranked,) = generator.generate([POST], options)
    assert len(ranked) > 1
    expected = raw_scores(generator, ranker, [c.text for c in ranked], options)
    assert [c.confidence for c in ranked] == pytest.approx(
        calibration.probability(expected).tolist(), rel=1e-4)


def test_a_calibration_fitted_with_other_weights_or_another_pool_holds_for_none(
    tiny_bundle: Path,
) -> None:
    """A threshold is refused with each option that differs from the fit's, and without a
    threshold the candidates carry no confidence: a probability read off another scale or
    another pool would say what is not so."""
    generator = generator_of(tiny_bundle)
    fitted = DecodeOptions(strategy="greedy", retrieve=3, generated=False, rerank="mmi-antilm",
                           mmi_lambda=0.3, mmi_gamma=5, mmi_per_token=True)
    calibrated(generator, "mmi-antilm", Calibration(1.0, 0.0), fit_fields(fitted, False))
    (holds,) = generator.generate([POST], fitted)
    assert holds and all(np.isfinite(c.confidence) for c in holds)
    for changes, says in (({"mmi_lambda": 0.5}, r"mmi_lambda 0\.5 \(fitted with 0\.3\)"),
                          ({"retrieve": 5}, r"retrieve 5 \(fitted with 3\)"),
                          ({"generated": True}, r"generated True \(fitted with False\)")):
        other = dataclasses.replace(fitted, **changes)
        with pytest.raises(OptionError, match=f"mmi-antilm holds for .*: {says}"):
            generator.generate([POST], dataclasses.replace(other, fallback_threshold=0.5))
        (ranked,) = generator.generate([POST], other)
        assert ranked and all(np.isnan(c.confidence) for c in ranked)


def test_a_threshold_on_an_uncalibrated_or_uncalibratable_ranker_is_refused(
    tiny_bundle: Path,
) -> None:
    generator = generator_of(tiny_bundle)
    options = DecodeOptions(retrieve=3, generated=False, fallback_threshold=0.5)
    calibrated(generator, "likelihood", Calibration(1.0, 0.0),
               fit_fields(dataclasses.replace(options, rerank="likelihood"), False))
    with pytest.raises(OptionError, match=r"rerank=retrieval's score cannot be calibrated(.|\n)*"
                                          r"--rerank likelihood"):
        generator.generate([POST], dataclasses.replace(options, rerank="retrieval"))
    with pytest.raises(OptionError, match="no calibration of it: choose a calibrated ranker"):
        generator.generate([POST], dataclasses.replace(options, rerank="dual-encoder"))
    # a calibration an older tuner fitted on Hits tables records no pool: it holds for none
    older = {CALIBRATION: {"likelihood": Calibration(1.0, 0.0).to_json()}}
    generator.candidates.bundle = dataclasses.replace(
        generator.bundle, decoding=DecodeSettings(DecodeOptions(), "tuned", older))
    with pytest.raises(OptionError, match="older s2s tune-decoding"):
        generator.generate([POST], dataclasses.replace(options, rerank="likelihood"))
