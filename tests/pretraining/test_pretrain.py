"""`s2s pretrain` end to end on a tiny corpus, `s2s train --set model.pretrained=OUT` from it,
and a pretraining run killed between checkpoints resuming to the same weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from nlp.generation.bundle import load_bundle
from nlp.training.checkpoint import read_state, variable_paths
from s2s.cli import main
from tests.conftest import REPO
from tests.training.test_run import ProgressWatcher, _checkpoint_step, _checkpoint_values

pytestmark = pytest.mark.slow  # every test trains

CORPUS = REPO / "corpora" / "dialogue-en.jsonl"
TINY = ["model.units=8", "model.embedding_dim=8", "train.batch_size=32",
        "train.learning_rate=0.01"]
CHECKPOINT_EVERY = 4


def _sets(*settings: str) -> list[str]:
    return [f"--set={s}" for s in (*TINY, *settings)]


def test_pretrain_then_train_from_it_starts_from_its_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "news.txt"
    text.write_text(
        "".join(f"the market rose {i} points on monday and fell on friday\n" for i in range(40)),
        "utf-8",
    )
    out = tmp_path / "pre"
    code = main(["pretrain", "--corpus", str(CORPUS), "--text", str(text), "--out", str(out),
                 "--epochs", "1", "--quiet", *_sets("model.dropout=0.1")])
    printed = capsys.readouterr()
    assert code == 0, printed.err[-3000:]
    assert f"model.pretrained={out}" in printed.out
    pretrained = load_bundle(out)
    record = pretrained.metadata["pretraining"]
    assert record["objectives"] == ["lm", "autoencoder"] and record["texts"]["train"] > 600
    assert pretrained.part("encoder_lm.weights.h5") is not None
    assert "monday" in pretrained.codec.vocab.tokens  # the vocabulary counts the text files

    # learning rate 0: what the run starts from is what its bundle keeps
    code = main(["train", "--corpus", str(CORPUS), "--out", str(tmp_path / "run"), "--epochs",
                 "1", "--quiet", *_sets("model.dropout=0.1", f"model.pretrained={out}",
                                        "train.learning_rate=0", "train.lm_loss_weight=0.5",
                                        "retrieval.index=false",
                                        "retrieval.dual_encoder_minutes=0")])
    assert code == 0, capsys.readouterr().err
    trained = load_bundle(tmp_path / "run" / "model")
    assert trained.codec.vocab.tokens == pretrained.codec.vocab.tokens
    theirs = variable_paths(pretrained.model)
    for path, variable in variable_paths(trained.model).items():
        if variable.trainable:
            np.testing.assert_array_equal(variable.numpy(), theirs[path].numpy(), err_msg=path)
    assert trained.metadata["pretrained"]["weights_kept_random"] == []
    assert trained.metadata["pretrained"]["encoder_lm_heads"] is True
    # the heads the run trained (at rate 0) are the pretrained ones, from its checkpoint
    stored = _checkpoint_values(tmp_path / "run" / "checkpoint")
    forward = [v for k, v in stored.items()
               if k.startswith("variables/objective") and "encoder_lm_heads.Sforward.S_kernel" in k]
    assert len(forward) == 1
    with h5py.File(pretrained.part("encoder_lm.weights.h5"), "r") as weights:
        kernels = []
        weights.visititems(lambda name, item: kernels.append(np.asarray(item))
                           if name.endswith("vars/0") and "forward" in name else None)
    assert len(kernels) == 1
    np.testing.assert_array_equal(forward[0], kernels[0])

    # another width: a clear error naming the pretrained config
    code = main(["train", "--corpus", str(CORPUS), "--out", str(tmp_path / "wide"), "--quiet",
                 *_sets("model.units=16", f"model.pretrained={out}")])
    error = capsys.readouterr().err
    assert code == 1 and str(out / "model" / "config.json") in error
    assert "model.units 8 there, 16 here" in error


def test_a_resumed_pretraining_reads_the_texts_it_started_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Changed --text files were re-split and re-windowed on resume with the old vocabulary,
    and the best epoch chosen across different held-out texts."""
    text = tmp_path / "news.txt"
    text.write_text("".join(f"the market rose {i} points on monday\n" for i in range(40)),
                    "utf-8")
    out = tmp_path / "pre"
    base = ["pretrain", "--text", str(text), "--out", str(out), "--quiet", *_sets()]
    assert main([*base, "--epochs", "1"]) == 0
    text.write_text(text.read_text("utf-8") + "a new line of news\n", "utf-8")
    assert main([*base, "--epochs", "2", "--resume"]) != 0
    assert "texts differ" in capsys.readouterr().err


def _pretrain_command(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "s2s.cli", "pretrain", "--corpus", str(CORPUS), "--out", str(out),
        "--epochs", "2",
        *_sets("model.dropout=0.2", "train.batch_size=16",
               f"train.checkpoint_every={CHECKPOINT_EVERY}", "train.log_every=1"),
        *extra,
    ]


def test_a_pretraining_run_killed_between_checkpoints_resumes_to_the_same_weights(
    tmp_path: Path,
) -> None:
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    first = subprocess.run(_pretrain_command(straight, "--quiet"), cwd=REPO, timeout=600,
                           capture_output=True, text=True,
                           env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    assert first.returncode == 0, first.stderr[-3000:]

    # stderr to a file, with Python's fault handler on: a crash of the run is shown with
    # its traceback in the failure, not only as a return code
    errors = tmp_path / "cut.stderr"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            _pretrain_command(cut), cwd=REPO, stdout=subprocess.PIPE, stderr=stderr,
            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        )
    assert process.stdout is not None
    progress = ProgressWatcher(process.stdout)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        saved = _checkpoint_step(cut / "checkpoint")
        if saved is None or progress.step < saved + 2:
            time.sleep(0.01)
            continue
        process.send_signal(signal.SIGSTOP)  # still: check again, then kill or go on
        stopped = _checkpoint_step(cut / "checkpoint")
        if stopped is not None and stopped % CHECKPOINT_EVERY == 0 and stopped < progress.step:
            break
        process.send_signal(signal.SIGCONT)
    assert process.poll() is None, (
        f"pretraining ended (code {process.poll()}) before it could be killed: "
        f"{errors.read_text()[-3000:]}")
    process.send_signal(signal.SIGKILL)
    process.wait()
    state = read_state(cut / "checkpoint")
    assert state.step_in_epoch > 0 and not state.finished

    resumed = subprocess.run(
        _pretrain_command(cut, "--resume", "--quiet"), cwd=REPO, capture_output=True,
        text=True, timeout=600, env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = read_state(cut / "checkpoint")
    assert final.finished and final.global_step == read_state(straight / "checkpoint").global_step
    expected = _checkpoint_values(straight / "checkpoint")
    got = _checkpoint_values(cut / "checkpoint")
    assert set(got) == set(expected)
    assert any("encoder_lm" in key for key in expected)  # the heads are in the checkpoint
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, atol=1e-6, err_msg=key)
    history = json.loads((cut / "model" / "metadata.json").read_text())["history"]
    assert len(history) == 2


def test_pretraining_leaves_the_fine_tuning_losses_out() -> None:
    """A fine-tuning config (the chat-en recipe's ranking loss, the unlikelihood on the
    sampled softmax's picks) given to pretraining, whose softmax is exact: the unlikelihood's
    pick was kept and refused without a sampled softmax, and the ranking loss ran."""
    from nlp.model import Seq2Seq
    from nlp.pretraining.objective import PretrainingObjective
    from nlp.util.config import ModelConfig, TrainConfig

    model = Seq2Seq(ModelConfig(vocab_size=30, embedding_dim=8, units=8))
    config = TrainConfig(sampled_softmax=0, contrastive_weight=1.0, unlikelihood_weight=10.0,
                         unlikelihood_pick="sampled")
    objective = PretrainingObjective(model, config, None, ["autoencoder"])
    used = objective.config
    assert (used.contrastive_weight, used.unlikelihood_weight, used.unlikelihood_pick) == (
        0.0, 0.0, "model")
