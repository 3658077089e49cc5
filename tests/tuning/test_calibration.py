"""Each ranker calibrated on the candidates the bot ranks (`nlp.tuning.calibration`): every
validation post's pool is what the bot would rank for it, the reply people gave added, and
each calibration records the options it holds for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from tests.conftest import REPO

FUSED = "dual-encoder+bm25"


def validation_pairs(count: int = 8) -> list[Pair]:
    lines = (REPO / "corpora" / "dialogue-en.jsonl").read_text("utf-8").splitlines()
    return [Pair(r["source"], r["target"]) for r in map(json.loads, lines[-count:])]


@pytest.mark.parametrize("options", [
    DecodeOptions(retrieve=4, generated=False, rerank="retrieval"),
    DecodeOptions(strategy="sample", n_best=3, retrieve=2, rerank="likelihood"),
], ids=["retrieved only", "sampled and retrieved"])
def test_each_post_s_pool_is_what_the_bot_ranks_with_the_reply_people_gave(
    tiny_bundle: Path, options: DecodeOptions
) -> None:
    from nlp.chat.offline import bot_candidates
    from nlp.generation.generator import Generator
    from nlp.text.cleaning import clean_message
    from nlp.tuning.calibration import chat_pools

    generator = Generator.from_bundle(tiny_bundle)
    pairs = validation_pairs()
    pools = chat_pools(generator, pairs, options)
    assert 0 < pools.posts <= len(pairs)
    as_output = generator.codec.as_output
    sent = {post: [c.text for c in n_best]
            for _, post, n_best in bot_candidates(generator, [p.source for p in pairs], options)}
    labels = iter(pools.labels)
    for text, candidates in zip(pools.texts, pools.candidates, strict=True):
        gold = candidates[0].text
        assert next(labels) and text in {clean_message(p.source) for p in pairs if p.target == gold}
        others = [c.text for c in candidates[1:]]
        assert not any(next(labels) for _ in others)
        # the bot's candidates, seeded as it seeds, a copy of the true reply left out
        assert sorted(others) == sorted(t for t in sent[text] if as_output(t) != as_output(gold))
    assert next(labels, None) is None


def test_every_ranker_is_calibrated_for_the_options_it_was_fitted_with(
    tiny_bundle: Path,
) -> None:
    from nlp.chat.offline import bot_options
    from nlp.generation.confidence import RankerCalibration, fit_fields
    from nlp.generation.generator import Generator
    from nlp.tuning.calibration import chat_pools, ranker_calibrations
    from nlp.tuning.search import with_ranker

    generator = Generator.from_bundle(tiny_bundle)
    pairs = validation_pairs()
    options = DecodeOptions(retrieve=4, generated=False, rerank="retrieval")
    weights = {"dual-encoder+bm25": {"bm25_weight": 0.25}}
    fitted = ranker_calibrations(generator, pairs, options, weights)
    assert set(fitted) == {"none", "likelihood", "dual-encoder", "dual-encoder+bm25"}
    pools = chat_pools(generator, pairs, options)
    for ranker, raw in fitted.items():
        calibration = RankerCalibration.from_json(ranker, raw)
        ranked = with_ranker(bot_options(options), ranker, weights)
        assert calibration.fitted_with == fit_fields(ranked, decodes=False)
        assert (calibration.calibration.pairs, calibration.calibration.positives) == (
            len(pools.labels), pools.posts)
        assert calibration.calibration.slope >= 0
    assert RankerCalibration.from_json(FUSED, fitted[FUSED]).fitted_with == {
        "bm25_weight": 0.25, "retrieve": 4, "generated": False}

