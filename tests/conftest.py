"""Shared fixtures: tiny corpora and one tiny trained model bundle per test session."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_CORPORA = REPO.parent / "shared" / "corpora"


def write_jsonl(path: Path, pairs: Sequence[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for source, target in pairs:
            handle.write(
                json.dumps({"source": source, "target": target}, ensure_ascii=False) + "\n"
            )
    return path


def tiny_overrides(**extra: object) -> list[str]:
    """Settings for models that train in seconds (units 8-32)."""
    settings = {
        "model.units": 16,
        "model.embedding_dim": 16,
        "model.dropout": 0.0,
        "train.batch_size": 16,
        "train.epochs": 1,
        "train.learning_rate": 0.005,
        **extra,
    }
    return [f"{key}={value}" for key, value in settings.items()]


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A chat model trained for one epoch on the shipped English dialogue sample."""
    from nlp.training.corpus_io import CorpusSpec
    from nlp.training.run import RunOptions, train
    from nlp.util.config import ExperimentConfig

    out = tmp_path_factory.mktemp("tiny_run")
    config = ExperimentConfig().with_overrides(tiny_overrides())
    train(config, CorpusSpec((REPO / "corpora" / "dialogue-en.jsonl",)), RunOptions(out, verbose=0))
    return out / "model"
