"""Conditional training on specificity (`nlp.control`): NIDF and its buckets by hand, the
markers in training, and the marker the decode option asks for in every model input."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from nlp.control import SpecificityBuckets, controlled_source, marker, wanted_bucket, with_markers
from nlp.decoding import DecodeOptions
from nlp.tokenizers.specials import UNK_ID
from nlp.util.config import ExperimentConfig
from tests.conftest import REPO, tiny_overrides

REPLIES = [["i", "know"], ["i", "like", "tea"], ["i", "know"], ["tea", "is", "good"]]


def test_nidf_and_buckets_by_hand() -> None:
    fitted = SpecificityBuckets.fit(REPLIES, 2)
    # 4 replies; "i" in 3, "know" and "tea" in 2, "like", "is", "good" in 1
    low, high = math.log(4 / 3), math.log(4)
    assert fitted.nidf["i"] == pytest.approx(0.0)
    assert fitted.nidf["know"] == pytest.approx((math.log(2) - low) / (high - low))
    assert fitted.nidf["good"] == pytest.approx(1.0)
    know = fitted.nidf["know"] / 2
    tea = (fitted.nidf["like"] + fitted.nidf["tea"]) / 3
    good = (fitted.nidf["tea"] + 2.0) / 3
    assert fitted.specificity(["i", "know"]) == pytest.approx(know)
    assert fitted.specificity(["tea", "is", "good"]) == pytest.approx(good)
    # the median of (know, tea, know, good): halfway between the two middle ones
    assert fitted.boundaries == pytest.approx(((know + tea) / 2,))
    assert [fitted.bucket(reply) for reply in REPLIES] == [0, 1, 0, 1]
    assert fitted.specificity(["unseen"]) == 1.0 and fitted.specificity([]) == 0.0


def test_a_reply_at_a_boundary_stays_in_the_lower_bucket() -> None:
    """Many equal generic replies at a quantile share the lower bucket, not the upper."""
    fitted = SpecificityBuckets.fit([["yes"]] * 3 + [["no"], ["tea", "now"]], 2)
    assert fitted.boundaries[0] == pytest.approx(fitted.specificity(["yes"]))
    assert fitted.bucket(["yes"]) == 0
    assert fitted.bucket(["tea", "now"]) == 1


def test_the_wanted_bucket_is_the_quantile_of_the_training_replies() -> None:
    assert [wanted_bucket(q, 10) for q in (0.0, 0.05, 0.7, 0.99, 1.0)] == [0, 0, 7, 9, 9]
    assert [wanted_bucket(q, 2) for q in (0.0, 0.49, 0.5, 1.0)] == [0, 0, 1, 1]


def test_markers_end_each_source() -> None:
    fitted = SpecificityBuckets.fit(REPLIES, 2)
    pairs = [(["hi"], reply) for reply in REPLIES]
    assert [source for source, _ in with_markers(fitted, pairs)] == [
        ["hi", "__spec0__"], ["hi", "__spec1__"], ["hi", "__spec0__"], ["hi", "__spec1__"]]
    assert controlled_source("hi there", 3) == f"hi there {marker(3)}" == "hi there __spec3__"


@pytest.mark.parametrize("buckets", [1, -1, 101])
def test_a_bucket_count_out_of_range_is_refused(buckets: int) -> None:
    with pytest.raises(ValueError, match=r"data\.specificity_buckets"):
        ExperimentConfig().with_overrides([f"data.specificity_buckets={buckets}"])


def test_companions_do_not_read_markers() -> None:
    on = ExperimentConfig().with_overrides(["data.specificity_buckets=4"]).data
    assert on.controls_specificity
    for extra in ("data.reverse=true", "data.task=lm"):
        data = ExperimentConfig().with_overrides(["data.specificity_buckets=4", extra]).data
        assert not data.controls_specificity


@pytest.fixture(scope="module")
def controlled_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny chat model trained with two specificity buckets on the shipped sample."""
    from nlp.training.corpus_io import CorpusSpec
    from nlp.training.run import RunOptions, train

    out = tmp_path_factory.mktemp("controlled")
    config = ExperimentConfig().with_overrides(
        tiny_overrides(**{"data.specificity_buckets": 2, "vocab.min_freq": 1}))
    train(config, CorpusSpec((REPO / "corpora" / "dialogue-en.jsonl",)), RunOptions(out, verbose=0))
    return out / "model"


@pytest.mark.slow
def test_a_controlled_model_reads_the_marker_it_was_asked_for(controlled_bundle: Path) -> None:
    """Training records the buckets and learns both markers as words; decoding reads the
    marker of the option's bucket, teacher-forced scores that of the option's default."""
    from nlp.generation.bundle import load_bundle
    from nlp.generation.generator import Generator

    bundle = load_bundle(controlled_bundle)
    record = bundle.metadata["specificity"]
    assert record["buckets"] == 2 and len(record["boundaries"]) == 1
    assert all(bundle.codec.vocab.encode([marker(b)])[0] != UNK_ID for b in (0, 1))
    generator = Generator(bundle)
    for wanted, bucket in ((0.0, 0), (1.0, 1)):
        inputs, results = generator.pools(["how are you ?"], DecodeOptions(specificity=wanted))
        assert inputs == [f"how are you ? {marker(bucket)}"]
        assert results[0] and results[0][0].source_tokens[-1] == marker(bucket)
    assert "'__spec0__'..'__spec1__'" in bundle.codec.recipe()  # what an export's client adds
    scored, _ = generator.candidates.model_inputs(["hi"])
    assert scored == [f"hi {marker(wanted_bucket(DecodeOptions().specificity, 2))}"]


@pytest.mark.slow
def test_scores_read_the_bundles_recommended_specificity(
    controlled_bundle: Path, tmp_path: Path
) -> None:
    """Teacher-forced scores (loss, Hits, reply scores) read the marker of the specificity
    the bundle's decoding settings recommend, as its replies are written."""
    import shutil

    from nlp.generation.bundle import load_bundle, store_decoding
    from nlp.generation.decode_settings import DecodeSettings
    from nlp.generation.generator import Generator

    copy = Path(shutil.copytree(controlled_bundle, tmp_path / "model"))
    store_decoding(copy, DecodeSettings(DecodeOptions(specificity=0.0), "tuned"))
    scored, _ = Generator(load_bundle(copy)).candidates.model_inputs(["hi"])
    assert scored == [f"hi {marker(0)}"]


@pytest.mark.slow
def test_retraining_a_controlled_model_marks_every_source_it_reads(
    controlled_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`s2s retrain` of a model trained on specificity buckets: the pairs it measures (new and
    old) end with a bucket marker, the buckets those of the replies it is retrained on,
    recorded in the new bundle."""
    from nlp.generation.bundle import load_bundle
    from nlp.training import run
    from nlp.training.corpus_io import CorpusSpec

    markers = {load_bundle(controlled_bundle).codec.vocab.encode([marker(b)])[0] for b in (0, 1)}
    read: list[list[list[int]]] = []
    real_losses = run._old_new_losses

    def losses(meter, old, new):  # type: ignore[no-untyped-def]
        read.extend([[source for source, _ in old], [source for source, _ in new]])
        return real_losses(meter, old, new)

    monkeypatch.setattr(run, "_old_new_losses", losses)
    run.retrain(controlled_bundle, CorpusSpec((REPO / "corpora" / "dialogue-en.jsonl",)),
                run.RunOptions(tmp_path / "re", verbose=0), run.RetrainOptions(old_share=0.3),
                tiny_overrides(**{"train.valid_fraction": 0.1}))
    assert read and read[1]  # the new validation pairs; the old (the same corpus here) may be none
    assert all(source[-1] in markers for sources in read for source in sources)
    assert load_bundle(tmp_path / "re").metadata["specificity"]["buckets"] == 2


@pytest.mark.slow
def test_evaluate_scores_at_the_specificity_its_options_give(
    controlled_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`s2s evaluate --specificity Q`: loss and Hits teacher-force the marker of Q, not the
    bundle's recommended one."""
    from nlp.corpus.records import Pair
    from nlp.evaluation import evaluate
    from nlp.generation.bundle import load_bundle
    from nlp.generation.candidates import Candidates
    from nlp.generation.generator import Generator
    from nlp.metrics.hits import HitsDraw

    generator = Generator(load_bundle(controlled_bundle))
    pairs = [Pair(f"how are you {i} ?", f"fine {i} .", group=str(i)) for i in range(6)]
    read: list[str] = []
    real = Candidates.model_inputs

    def model_inputs(self, texts, specificity=None):  # type: ignore[no-untyped-def]
        inputs, drafts = real(self, texts, specificity)
        read.extend(inputs)
        return inputs, drafts

    monkeypatch.setattr(Candidates, "model_inputs", model_inputs)
    for wanted, bucket in ((0.0, 0), (1.0, 1)):
        read.clear()
        options = DecodeOptions(specificity=wanted)
        evaluate.METRICS["loss"](generator, pairs, options, 8)
        evaluate.hits_metrics(generator, pairs, options, 8, HitsDraw(k=3, seed=0))
        assert read and all(text.endswith(f" {marker(bucket)}") for text in read)
