"""Model selection by the task metric (`train.select_by=rouge`): the best bundle follows
validation ROUGE-L instead of validation loss; early stopping waits for epochs that improve
neither."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.generation.bundle import load_bundle
from nlp.generation.generator import Generator
from nlp.text.normalize import normalize_text
from nlp.training import run, trainer
from nlp.training.corpus_io import CorpusSpec, load_pairs
from nlp.training.run import RunOptions, train
from nlp.training.trainer import Selection
from nlp.util.config import ExperimentConfig
from tests.conftest import REPO, tiny_overrides

CORPUS = CorpusSpec((REPO / "corpora" / "headlines-en.jsonl",))


def headline_config(**extra: object) -> ExperimentConfig:
    settings = {"data.task": "headline", "train.max_source_length": 30, **extra}
    return ExperimentConfig().with_overrides(tiny_overrides(**settings))


@pytest.mark.slow
def test_select_by_rouge_keeps_the_best_scoring_epoch_and_stops_when_both_stall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scripted ROUGE and validation loss per epoch: the best is epoch 2 by ROUGE although
    epoch 3 has the lower loss; epoch 3 lowered the loss, so only epochs 4 and 5 stalled, and
    with patience 2 training stops after epoch 5 (not after epoch 4, as counting ROUGE
    alone would)."""
    scores = iter([0.10, 0.30, 0.20, 0.25, 0.28, 0.9])
    losses = iter([3.0, 2.9, 2.8, 2.8, 2.85, 2.7])

    def scripted(*args: object) -> Selection:
        return Selection("rouge", lambda: next(scores))

    monkeypatch.setattr(run, "rouge_selection", scripted)
    monkeypatch.setattr(trainer, "LossMeter",
                        lambda model, batching, *sums: lambda valid: next(losses))
    config = headline_config(
        **{"train.select_by": "rouge", "train.epochs": 6, "train.patience": 2}
    )
    state = train(config, CORPUS, RunOptions(tmp_path, verbose=0))
    assert state.epoch == 5 and state.best_epoch == 2 and state.best_score == 0.30
    assert state.best_valid_loss == 2.9 and state.lowest_valid_loss == 2.8
    metadata = load_bundle(tmp_path).metadata
    assert metadata["metrics"]["epoch"] == 2 and metadata["metrics"]["valid_rouge"] == 0.30
    assert [r["valid_rouge"] for r in metadata["history"]] == [0.10, 0.30]


@pytest.mark.slow
def test_select_by_rouge_decodes_the_validation_sample(tmp_path: Path) -> None:
    """The epoch's score is the ROUGE-L F1 that rouge-score (the oracle) gives the saved
    model's headlines for the first 5 validation pairs, decoded with its recommended
    settings."""
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    config = headline_config(**{"train.select_by": "rouge", "train.select_sample": 5})
    state = train(config, CORPUS, RunOptions(tmp_path, verbose=0))
    score = state.history[0]["valid_rouge"]
    assert state.best_score == score
    bundle = load_bundle(tmp_path)
    assert bundle.metadata["metrics"]["valid_rouge"] == score

    sample = load_pairs(CorpusSpec((tmp_path / run.VALID_FILE,)), config.data)[:5]
    assert bundle.decoding is not None
    generations = Generator(bundle).generate([p.source for p in sample], bundle.decoding.options)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    f1 = [scorer.score(normalize_text(pair.target), n_best[0].text)["rougeL"].fmeasure
          for pair, n_best in zip(sample, generations, strict=True)]
    assert score == pytest.approx(sum(f1) / 5, abs=1e-9)


def test_select_by_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"train\.select_by must be one of loss, rouge"):
        train(headline_config(**{"train.select_by": "bleu"}), CORPUS, RunOptions(tmp_path))
    chat = ExperimentConfig().with_overrides(tiny_overrides(**{"train.select_by": "rouge"}))
    with pytest.raises(ValueError, match="no objective"):
        train(chat, CorpusSpec((REPO / "corpora" / "dialogue-en.jsonl",)), RunOptions(tmp_path))
