"""The corpus-training benchmark trains on a real corpus's first batches, as `s2s train`
would, and splits a step's time into the step and the wait for its batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.corpus_training import measure
from benchmarks.data_pipeline import Corpus, Source

SAMPLE = Path(__file__).resolve().parents[2] / "corpora" / "dialogue-en.jsonl"
TINY = ("tokenizer.kind=words", "vocab.max_size=300", "model.embedding_dim=16",
        "model.units=16", "train.batch_size=8")


@pytest.mark.slow
def test_it_times_the_corpus_batches_both_ways() -> None:
    row = measure(Corpus("sample", (Source((str(SAMPLE),), "jsonl"),), TINY, "chat"), 4,
                  profile=2)
    assert row["steps"] == 4 and row["training_examples"] > 250
    assert row["vocabulary"] <= 300
    assert row["ms_per_step_alone"] > 0 and row["ms_per_step_fed"] > 0
    assert 0 <= row["data_share"] < 1
    assert row["target_tokens_per_s"] > 0 and row["achieved_gflops"] > 0
    source_width, target_width = row["mean_batch_shape"]
    assert source_width >= 1 and target_width >= 2  # target_in: BOS and at least one token
    # the traced steps: the recurrent loops' products are found among the ops
    assert row["profile"]["steps"] == 2 and row["profile"]["kinds_ms"]["matmul"] > 0


def test_chitchat_trains_as_the_chat_en_recipe_does() -> None:
    """chitchat's settings were written out by hand and fell behind the recipe (its ranking
    loss and unlikelihood, which cost time a step): the recipe's, read from the README, but
    its packaged vectors."""
    from benchmarks.data_pipeline import corpora
    from benchmarks.recipes import training_settings

    chitchat = next(corpus for corpus in corpora() if corpus.name == "chitchat")
    recipe = training_settings("chat-en")
    assert any(s.startswith("train.contrastive_weight=") for s in chitchat.settings)
    assert set(chitchat.settings) == {s for s in recipe if "pretrained_embeddings" not in s}


def test_a_reused_model_is_recorded_with_the_recipe_that_trained_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--reuse recorded the call's recipe and `verbatim` (no --minutes: true) for a model a
    `--minutes 1` smoke run had trained."""
    import argparse
    import dataclasses

    from benchmarks import recipes

    monkeypatch.setattr(recipes, "run_script", lambda *args, **kwargs: 0.5)
    monkeypatch.setattr(recipes, "read_recipe", lambda name: "s2s train --set train.max_minutes=20")
    @dataclasses.dataclass
    class Run:
        name: str
        data: dict[str, Path]

    run = Run("chat-en", {})

    def score(recipe: object, work: Path) -> dict[str, float]:
        (work / "runs" / "chat" / "model").mkdir(parents=True, exist_ok=True)
        return {"hits": 0.1}

    out = tmp_path / "out.json"
    smoke = argparse.Namespace(only=None, work=tmp_path, out=out, minutes=1.0, reuse=False)
    recipes.run_recipes([run], smoke, "runs/chat", score)
    reused = argparse.Namespace(only=None, work=tmp_path, out=out, minutes=None, reuse=True)
    entry = recipes.run_recipes([run], reused, "runs/chat", score)["chat-en"]
    assert entry["verbatim"] is False and "max_minutes=1" in entry["recipe"]
