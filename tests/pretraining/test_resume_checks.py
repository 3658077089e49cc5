"""What `s2s pretrain --resume` checks and keeps before it reads any text (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlp.generation.bundle import file_sha256
from nlp.pretraining import run as pretraining_run
from nlp.pretraining.run import PRETRAINING_FILE, PretrainOptions, pretrain
from nlp.training import run as training_run
from nlp.training.precision import FLOAT32
from nlp.util.config import ExperimentConfig


class Stop(Exception):
    """Raised where the texts would be read: what comes before is what the tests check."""


def _started_run(tmp_path: Path, objectives: list[str]) -> tuple[Path, Path]:
    """A pretraining run's directory as a fresh `s2s pretrain` leaves it, and its text."""
    out = tmp_path / "pre"
    (out / "run").mkdir(parents=True)
    text = tmp_path / "news.txt"
    text.write_text("the market rose on monday\n", "utf-8")
    ExperimentConfig().save(out / "run" / "config.json")
    (out / "run" / PRETRAINING_FILE).write_text(json.dumps(
        {"objectives": objectives, "inputs": [file_sha256(text)]}))
    return out, text


def _stop_at_the_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    def stop(*_: object) -> None:
        raise Stop
    monkeypatch.setattr(pretraining_run, "read_texts", stop)


def test_a_resumed_pretraining_computes_in_the_dtypes_it_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run started where train.precision=auto chose bfloat16 products goes on in them
    where auto would now choose float32, as `s2s train --resume` does: resumed weights
    computed otherwise drift from the uninterrupted run's."""
    out, text = _started_run(tmp_path, ["lm", "autoencoder"])
    recorded = out / "run" / "precision.json"
    recorded.write_text(json.dumps({"policy": "float32", "products": "bfloat16"}))
    monkeypatch.setattr(training_run, "resolve_precision", lambda *_: (FLOAT32, None))
    _stop_at_the_texts(monkeypatch)
    with pytest.raises(Stop):
        pretrain(ExperimentConfig(), None, [text], PretrainOptions(out, resume=True, verbose=0))
    assert json.loads(recorded.read_text())["products"] == "bfloat16"


@pytest.mark.parametrize("given", [("autoencoder", "lm"), ("lm", "autoencoder")])
def test_resuming_with_the_same_objectives_in_another_order_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: tuple[str, ...]
) -> None:
    """The run records its objectives in a fixed order; the same ones given otherwise
    (`--objectives autoencoder lm`) were refused as different."""
    out, text = _started_run(tmp_path, ["lm", "autoencoder"])
    _stop_at_the_texts(monkeypatch)
    with pytest.raises(Stop):
        pretrain(ExperimentConfig(), None, [text],
                 PretrainOptions(out, given, resume=True, verbose=0))


def test_resuming_with_other_objectives_is_refused(tmp_path: Path) -> None:
    out, text = _started_run(tmp_path, ["autoencoder"])
    with pytest.raises(ValueError, match="objectives lm differ from the run's autoencoder"):
        pretrain(ExperimentConfig(), None, [text],
                 PretrainOptions(out, ("lm",), resume=True, verbose=0))
