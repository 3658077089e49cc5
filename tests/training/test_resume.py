"""`s2s train --resume` applies the limits it may change and refuses every other change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nlp.training.checkpoint import read_state
from nlp.training.corpus_io import CorpusSpec
from nlp.training.run import RunOptions, resume_settings, train
from nlp.util.config import ExperimentConfig
from s2s.cli import main
from tests.conftest import REPO, tiny_overrides

CORPUS = REPO / "corpora" / "dialogue-en.jsonl"
SETTINGS = tiny_overrides(**{"model.units": 8, "model.embedding_dim": 8, "train.batch_size": 32})


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run that trained its one epoch to the end."""
    out = tmp_path_factory.mktemp("resume") / "run"
    train(
        ExperimentConfig().with_overrides(SETTINGS),
        CorpusSpec((CORPUS,)),
        RunOptions(out, verbose=0),
    )
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def _resume(out: Path, *extra: str) -> int:
    return main(
        ["train", "--corpus", str(CORPUS), "--out", str(out), "--quiet", "--resume", *extra]
    )


@pytest.mark.slow
def test_resume_with_more_epochs_trains_them_and_says_so(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _copy(finished_run, tmp_path)
    assert _resume(out, "--epochs", "2") == 0
    assert "train.epochs 1 -> 2" in capsys.readouterr().err
    state = read_state(out / "checkpoint")
    assert state.finished and state.epoch == 2 and len(state.history) == 2
    # the training time at each epoch's end keeps counting across the resume
    first, second = (record["train_seconds"] for record in state.history)
    assert 0 < first < second
    saved = json.loads((out / "run" / "config.json").read_text())
    assert saved["train"]["epochs"] == 2  # a later plain --resume keeps the new limit


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags",
    [
        ["--set", "model.units=16"],
        ["--set", "train.learning_rate=0.1"],
        ["--seed", "7"],
    ],
)
def test_resume_refuses_settings_it_cannot_apply(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    out = _copy(finished_run, tmp_path)
    assert _resume(out, *flags) == 1
    error = capsys.readouterr().err
    key = flags[1].split("=")[0] if flags[0] == "--set" else "train.seed"
    assert key in error and "--resume" in error
    assert read_state(out / "checkpoint").epoch == 1  # nothing trained


@pytest.mark.slow
def test_resume_compares_a_config_file_with_the_saved_one(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "c.json"
    ExperimentConfig().save(config_file)  # the defaults: a different model
    assert _resume(_copy(finished_run, tmp_path), "--config", str(config_file)) == 1
    assert "model.units 8 -> 256" in capsys.readouterr().err


def test_resume_settings_keep_the_derived_vocabulary_size() -> None:
    saved = ExperimentConfig().with_overrides(["model.vocab_size=120", "train.epochs=3"])
    requested = ExperimentConfig().with_overrides(["train.patience=9", "train.max_minutes=1.5"])
    resumed, changes = resume_settings(saved, requested)
    assert resumed.model.vocab_size == 120
    assert (resumed.train.epochs, resumed.train.patience, resumed.train.max_minutes) == (10, 9, 1.5)
    assert changes == [
        "train.epochs 3 -> 10",
        "train.max_minutes 0.0 -> 1.5",
        "train.patience 3 -> 9",
    ]


@pytest.mark.slow
def test_resume_refuses_other_training_files_or_validation_pairs(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Resumed without the `--valid` it started with (or with one it did not), a run held
    other pairs out and compared validation losses across the two sets; with the corpus
    changed it trained on other batches: both are refused before anything trains."""
    out = _copy(finished_run, tmp_path)
    other_valid = tmp_path / "valid.jsonl"
    other_valid.write_text(json.dumps({"source": "a new post", "target": "its reply"}) + "\n")
    assert _resume(out, "--valid", str(other_valid)) == 1
    assert "the validation pairs differ" in capsys.readouterr().err
    grown = tmp_path / "grown.jsonl"
    grown.write_text(CORPUS.read_text("utf-8")
                     + json.dumps({"source": "one more post", "target": "one more reply"}) + "\n")
    code = main(["train", "--corpus", str(grown), "--out", str(out), "--quiet", "--resume"])
    assert code == 1 and "the training corpus differs" in capsys.readouterr().err
    assert read_state(out / "checkpoint").epoch == 1  # nothing trained
    assert _resume(out, "--epochs", "2") == 0  # the same files: resumed


@pytest.mark.parametrize("setting", ["model.cell=LSTM", "train.lr_schedule=cosine",
                                     "train.select_by=bleu", "train.sampled_softmax=-1",
                                     "train.epochs=0", "train.select_by=rouge",
                                     "train.ema_decay=1", "model.attention=luong",
                                     "model.pretrained_embeddings=/no/such/vectors.vec",
                                     "train.contrastive_weight=1 model.copy=true"])
def test_a_bad_setting_is_refused_before_the_run_directory_is_touched(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str
) -> None:
    """Training into a run's directory with a setting nothing can build (a model cell, a
    schedule, a selection, an objective option) was refused only after minutes of
    tokenizing, with the old run's config and validation pairs already replaced."""
    out = _copy(finished_run, tmp_path)
    kept = (out / "valid.jsonl", out / "run" / "config.json", out / "run" / "precision.json")
    before = {path: path.read_bytes() for path in kept if path.exists()}
    code = main(["train", "--corpus", str(CORPUS), "--out", str(out), "--quiet",
                 *[f"--set={item}" for item in SETTINGS],
                 *[f"--set={item}" for item in setting.split()]])
    assert code == 1 and setting.split("=")[0].split(".")[1] in capsys.readouterr().err
    assert {path: path.read_bytes() for path in before} == before


def test_a_refused_setting_on_resume_is_not_saved(finished_run: Path, tmp_path: Path) -> None:
    """`--resume --set model.recurrence=bogus` was refused after the run's config had it:
    every later --resume failed on it."""
    out = _copy(finished_run, tmp_path)
    config = out / "run" / "config.json"
    before = config.read_bytes()
    assert _resume(out, "--set", "model.recurrence=bogus") == 1
    assert config.read_bytes() == before


def test_a_config_file_and_a_task_preset_together_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--config C.json --task headline` applied the preset on top of the file, silently
    replacing a dozen of the file's settings."""
    config_file = tmp_path / "c.json"
    ExperimentConfig().save(config_file)
    code = main(["train", "--corpus", str(CORPUS), "--out", str(tmp_path / "run"), "--quiet",
                 "--config", str(config_file), "--task", "headline"])
    assert code != 0 and "give one" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["train", "pretrain"])
def test_the_resume_help_names_every_setting_a_resume_may_change(command: str) -> None:
    """The help listed some of them (train.epochs|max_minutes|patience), not what
    `resume_settings` allows."""
    import argparse

    from nlp.training.run import SAFE_ON_RESUME
    from s2s.cli import build_parser

    commands = next(action for action in build_parser()._actions
                    if isinstance(action, argparse._SubParsersAction))
    resume = next(action for action in commands.choices[command]._actions
                  if "--resume" in action.option_strings)
    assert all(setting in str(resume.help) for setting in SAFE_ON_RESUME), resume.help


def test_a_ranking_run_says_what_its_validation_loss_adds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the ranking loss trained, the validation loss that picks the bundle is the
    cross-entropy plus the ranking loss at its weight: `s2s train` and the history say both
    parts (the number alone read as a cross-entropy, perplexity e^6)."""
    settings = tiny_overrides(**{"model.units": 8, "model.embedding_dim": 8,
                                 "train.batch_size": 32, "train.contrastive_weight": 2,
                                 "retrieval.index": "false", "retrieval.dual_encoder_minutes": 0})
    out = tmp_path / "run"
    assert main(["train", "--corpus", str(CORPUS), "--out", str(out),
                 *[f"--set={item}" for item in settings]]) == 0
    said = capsys.readouterr().out
    [record] = json.loads((out / "model" / "metadata.json").read_text())["history"]
    loss, cross_entropy, ranking = (record[f"valid_{k}"]
                                    for k in ("loss", "cross_entropy", "ranking"))
    assert loss == pytest.approx(cross_entropy + 2 * ranking, abs=1e-4)
    assert (f"best validation loss {loss:.4f} at epoch 1 (cross-entropy {cross_entropy:.4f} "
            f"with the ranking loss {ranking:.4f} at its weight)") in said
