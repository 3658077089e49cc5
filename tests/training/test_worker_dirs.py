"""Where the workers of `s2s train --multi-worker` write: the chief into --out, the others
into a private copy that is theirs for the run only (no TensorFlow cluster needed)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from nlp.training import run
from nlp.training.corpus_io import CorpusSpec
from nlp.training.run import RunOptions, train
from nlp.util.config import ExperimentConfig


class Stop(Exception):
    """Raised once the run has started: what `train` leaves behind is what is checked."""


@dataclass
class SecondWorker:
    """The cluster resolver of worker 1 of two, as MultiWorkerMirroredStrategy has it."""

    task_type: str = "worker"
    task_id: int = 1

    def cluster_spec(self) -> SecondWorker:
        return self

    def as_dict(self) -> dict[str, list[str]]:
        return {"worker": ["host1:1", "host2:1"]}


@dataclass
class ClusterStrategy:
    cluster_resolver: SecondWorker


def test_a_non_chief_workers_private_directory_is_removed_when_train_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Non-chief workers save into a temporary directory (a copy of --out on --resume)
    that was never removed."""
    made: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(**kwargs: str) -> str:
        made.append(Path(real_mkdtemp(dir=tmp_path, **kwargs)))
        return str(made[-1])

    def started(seed: int) -> None:
        assert made and made[0].is_dir()
        raise Stop

    monkeypatch.setattr(run.tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(run, "training_strategy",
                        lambda multi_worker: ClusterStrategy(SecondWorker()))
    monkeypatch.setattr(run, "seed_everything", started)
    options = RunOptions(tmp_path / "out", verbose=0, multi_worker=True)
    with pytest.raises(Stop):
        train(ExperimentConfig(), CorpusSpec((tmp_path / "corpus.jsonl",)), options)
    assert len(made) == 1 and not made[0].exists()
