"""`data.context_turns` is one setting: training builds pairs with it, the bundle records
it, the chat feeds it, and any contradiction is an error that says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.chat.responder import ChatResponder
from nlp.chat.settings import SettingsStore
from nlp.generation.bundle import load_bundle
from nlp.training import prepare, run
from nlp.training.checkpoint import TrainState
from nlp.training.corpus_io import CorpusSpec
from nlp.util.config import ExperimentConfig
from tests.conftest import tiny_overrides, write_jsonl
from tests.fakes.fake_generators import ScriptedGenerator, fake_model

SEPARATOR = ExperimentConfig().data.turn_separator


def _dialogues(tmp_path: Path) -> Path:
    """40 DailyDialog-style dialogues of four turns each."""
    path = tmp_path / "dialogues.txt"
    lines = [
        f"hello number {i} . __eou__ hi {i} ! __eou__ how are you {i} ? __eou__ fine {i} . __eou__"
        for i in range(40)
    ]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def _training_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, corpus: CorpusSpec, turns: int
) -> list[str]:
    """Run `train` up to the trainer and return the training sources it built."""
    sources: list[str] = []
    real_tokenize_pairs = prepare.tokenize_pairs

    def tokenize_pairs(codec, groups, **options):  # type: ignore[no-untyped-def]
        sources.extend(pair.source for pair in groups[0])  # the training pairs
        return real_tokenize_pairs(codec, groups, **options)

    monkeypatch.setattr(prepare, "tokenize_pairs", tokenize_pairs)
    monkeypatch.setattr(run, "_fit", lambda *args, **named: TrainState())
    config = ExperimentConfig().with_overrides(
        tiny_overrides(**{"data.context_turns": turns, "train.valid_fraction": 0.2})
    )
    run.train(config, corpus, run.RunOptions(tmp_path / "run", verbose=0))
    return sources


def test_training_reads_dialogues_with_the_configured_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = _training_sources(
        tmp_path, monkeypatch, CorpusSpec((_dialogues(tmp_path),), "dailydialog"), turns=2
    )
    assert max(source.count(SEPARATOR.strip()) for source in sources) == 2
    assert any(source.startswith("hello number") and "how are you" in source for source in sources)


def test_pairs_with_more_context_than_configured_are_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = [(f"hi {i}{SEPARATOR}hello {i}", f"how are you {i} ?") for i in range(30)]
    corpus = CorpusSpec((write_jsonl(tmp_path / "converted.jsonl", pairs),))
    with pytest.raises(ValueError, match=r"up to 1 earlier turns.*data\.context_turns=1"):
        _training_sources(tmp_path, monkeypatch, corpus, turns=0)


def test_context_turns_without_any_context_in_the_pairs_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = [(f"hi {i}", f"hello {i}") for i in range(30)]
    corpus = CorpusSpec((write_jsonl(tmp_path / "single.jsonl", pairs),))
    with pytest.raises(ValueError, match="no training source holds an earlier turn"):
        _training_sources(tmp_path, monkeypatch, corpus, turns=2)


def test_the_bundle_records_how_its_pairs_were_built(tiny_bundle: Path) -> None:
    record = load_bundle(tiny_bundle).metadata["pairs"]
    assert record == {
        "context_turns": 0,
        "turn_separator": SEPARATOR,
        "most_earlier_turns_seen": 0,
    }


def test_the_chat_cannot_feed_more_turns_than_the_model_was_trained_with() -> None:
    model = fake_model(ScriptedGenerator(), context_turns=1)
    with pytest.raises(ValueError, match="trained with 1 earlier turns"):
        ChatResponder(model, store=SettingsStore(":memory:"), context_turns=3)
    fewer = ChatResponder(model, store=SettingsStore(":memory:"), context_turns=0)
    assert fewer.context.turns == 0
