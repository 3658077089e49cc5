"""Retraining a trained model on new data, with and without vocabulary extension."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import tiny_overrides, write_jsonl
from nlp.bundle import load_bundle
from nlp.training.corpus_io import CorpusSpec
from nlp.training.run import RetrainOptions, RunOptions, retrain

NEW_PAIRS = [
    (f"do you like {thing} ?", f"yes , {thing} is wonderful")
    for thing in ["zorblax", "quintessa", "marmoset", "velociraptor", "xylophone"] * 8
]


def _new_corpus(tmp_path: Path) -> CorpusSpec:
    return CorpusSpec((write_jsonl(tmp_path / "new.jsonl", NEW_PAIRS),))


def test_retrain_keeps_vocabulary_and_reports_losses(tiny_bundle: Path, tmp_path: Path) -> None:
    before = load_bundle(tiny_bundle)
    losses = retrain(
        tiny_bundle,
        _new_corpus(tmp_path),
        RunOptions(tmp_path / "re", verbose=0),
        RetrainOptions(old_share=0.5),
        tiny_overrides(**{"train.epochs": 2}),
    )
    assert {
        "before_new_valid_loss",
        "after_new_valid_loss",
        "before_old_valid_loss",
        "after_old_valid_loss",
    } <= set(losses)
    assert losses["after_new_valid_loss"] < losses["before_new_valid_loss"]
    after = load_bundle(tmp_path / "re")
    assert after.codec.vocab == before.codec.vocab
    assert after.metadata["retrained_from"] == str(tiny_bundle)


def test_extend_vocab_grows_matrices_and_keeps_learned_rows(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    before = load_bundle(tiny_bundle)
    old_size = len(before.codec.vocab)
    old_embedding = before.model.source_embedding.embeddings.numpy()
    retrain(
        tiny_bundle,
        _new_corpus(tmp_path),
        RunOptions(tmp_path / "grown", verbose=0),
        RetrainOptions(extend_vocab=True, extend_min_freq=2),
        tiny_overrides(**{"train.epochs": 1, "train.learning_rate": 0.0}),
    )
    after = load_bundle(tmp_path / "grown")
    assert "zorblax" in after.codec.vocab and "zorblax" not in before.codec.vocab
    assert len(after.codec.vocab) == after.config.model.vocab_size > old_size
    for token in before.codec.vocab:
        assert after.codec.vocab.id_of(token) == before.codec.vocab.id_of(token)
    grown = after.model.source_embedding.embeddings.numpy()
    assert grown.shape[0] == len(after.codec.vocab)
    np.testing.assert_allclose(grown[:old_size], old_embedding)  # learning rate 0: rows kept
    assert after.model.output_layer.kernel.shape[1] == len(after.codec.vocab)
