"""Training through the project's own code: the two tutorial tasks, resume, determinism."""

from __future__ import annotations

import math
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import tensorflow as tf

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.evaluation.evaluate import exact_metrics
from nlp.generation.generator import Generator
from nlp.training.checkpoint import read_state
from nlp.training.corpus_io import CorpusSpec
from nlp.training.run import RunOptions, train
from nlp.util.config import ExperimentConfig
from tests.conftest import REPO, tiny_overrides, write_jsonl

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def integer_pair(rng: random.Random) -> tuple[str, str]:
    numbers = [str(rng.randint(1, 50)) for _ in range(6)]
    return " ".join(numbers), " ".join(reversed(numbers[:3]))


def digits_pair(rng: random.Random) -> tuple[str, str]:
    digits = [rng.randrange(10) for _ in range(rng.randint(1, 8))]
    return " ".join(map(str, digits)), " ".join(WORDS[d] for d in digits)


def exact_match(model_dir: Path, pairs: list[tuple[str, str]]) -> float:
    """Greedy exact match as `s2s evaluate --metric exact` scores it."""
    metrics = exact_metrics(Generator.from_bundle(model_dir), [Pair(s, t) for s, t in pairs],
                            DecodeOptions(strategy="greedy"), batch_size=64)
    return metrics["exact_match"]


# The tutorial tasks train seq2seq models, not chat bots: no reply index or dual-encoder ranker
# (`s2s train` builds both for data.task=chat), which nothing here reads. The Keras addition
# tutorial, at its own scale, is `benchmarks/tutorial_addition.py`.
NOT_A_CHAT_BOT = {"retrieval.index": False, "retrieval.dual_encoder_minutes": 0}


def train_task(tmp_path: Path, make_pair, count: int, epochs: int) -> tuple[Path, random.Random]:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    corpus = write_jsonl(tmp_path / "train.jsonl", [make_pair(rng) for _ in range(count)])
    config = ExperimentConfig().with_overrides(
        tiny_overrides(
            **{
                "model.units": 32,
                "model.embedding_dim": 32,
                "train.batch_size": 64,
                "train.epochs": epochs,
                "train.valid_fraction": 0.05,
                "vocab.max_size": 100,
                **NOT_A_CHAT_BOT,
            }
        )
    )
    train(config, CorpusSpec((corpus,)), RunOptions(tmp_path / "run", verbose=0))
    return tmp_path / "run" / "model", rng


@pytest.mark.slow
def test_integer_sequence_task_reaches_99_percent(tmp_path: Path) -> None:
    """The Keras tutorial task: 6 random integers in 1..50 -> the first 3 reversed."""
    model_dir, rng = train_task(tmp_path, integer_pair, 6000, epochs=6)
    fresh = [integer_pair(rng) for _ in range(100)]
    assert exact_match(model_dir, fresh) >= 0.99


@pytest.mark.slow
def test_digits_to_words_task_reaches_99_percent(tmp_path: Path) -> None:
    model_dir, rng = train_task(tmp_path, digits_pair, 5000, epochs=10)
    fresh = [digits_pair(rng) for _ in range(100)]
    assert exact_match(model_dir, fresh) >= 0.99


DECODER_MODES = {
    "basic": {"model.attention": "none", "model.input_feeding": False},
    "feedback": {"model.attention": "none", "model.input_feeding": True},
    "peek": {"model.attention": "none", "model.input_feeding": False, "model.peek": True},
    "attention": {"model.attention": "general", "model.input_feeding": True},
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", sorted(DECODER_MODES))
def test_each_decoder_mode_trains_and_decodes(tmp_path: Path, mode: str) -> None:
    """Tiny: one epoch of integer reversal learns something (validation loss below ln |V|,
    the loss of a model that knows nothing and spreads its probability evenly), then the
    bundle decodes by beam search."""
    rng = random.Random(3)
    corpus = write_jsonl(tmp_path / "train.jsonl", [integer_pair(rng) for _ in range(200)])
    config = ExperimentConfig().with_overrides(
        tiny_overrides(**{"model.units": 8, "model.embedding_dim": 8, **DECODER_MODES[mode]})
    )
    state = train(config, CorpusSpec((corpus,)), RunOptions(tmp_path / "run", verbose=0))
    generator = Generator.from_bundle(tmp_path / "run" / "model")
    assert state.history[-1]["valid_loss"] < math.log(generator.config.model.vocab_size) - 0.1
    assert generator.config.model.attention == DECODER_MODES[mode]["model.attention"]
    [n_best] = generator.generate(
        ["5 6 7 8 9 10"], DecodeOptions(beam_size=2, min_length=2, max_length=5)
    )
    best = n_best[0]
    assert len(best.tokens) >= 2


def _weights(model_dir: Path) -> list[np.ndarray]:
    return [np.array(w) for w in Generator.from_bundle(model_dir).bundle.model.get_weights()]


CHECKPOINT_EVERY = 12


def _train_command(out: Path, *extra: str) -> list[str]:
    """`s2s train` on the shipped dialogue sample: 44 batches an epoch, dropout on; no index
    or dual encoder: the resume compared here does not touch them, and three runs built them."""
    return [
        sys.executable,
        "-m",
        "s2s.cli",
        "train",
        "--corpus",
        str(REPO / "corpora" / "dialogue-en.jsonl"),
        "--out",
        str(out),
        "--epochs",
        "2",
        *(
            f"--set={s}"
            for s in tiny_overrides(
                **{
                    "train.batch_size": 8,
                    "model.dropout": 0.2,
                    "train.checkpoint_every": CHECKPOINT_EVERY,
                    "train.log_every": 1,  # the progress bar shows every step
                    **NOT_A_CHAT_BOT,
                }
            )
        ),
        *extra,
    ]


class ProgressWatcher:
    """Reads the progress bar of a training process: the last `step/total` it printed."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.step = 0
        self._stream = stream
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        text = ""
        while chunk := self._stream.read1(4096):  # type: ignore[attr-defined]
            text = (text + chunk.decode("utf-8", "replace"))[-200:]
            steps = re.findall(r"(\d+)/\d+", text)
            if steps:
                self.step = int(steps[-1])


def _checkpoint_step(directory: Path) -> int | None:
    """global_step of the newest checkpoint, None while there is none (or it is rotating)."""
    try:
        return read_state(directory).global_step
    except (FileNotFoundError, ValueError, tf.errors.OpError):
        return None


def _checkpoint_values(directory: Path) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(directory)))
    return {
        key: reader.get_tensor(key)
        for key in reader.get_variable_to_shape_map()
        if key.startswith("variables/")
    }


@pytest.mark.slow
def test_process_killed_between_checkpoints_resumes_to_the_same_weights(tmp_path: Path) -> None:
    """SIGKILL a real `s2s train` mid-epoch, steps after its last checkpoint; --resume must
    end with the same model and optimizer values as a run that was never interrupted."""
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    subprocess.run(_train_command(straight, "--quiet"), cwd=REPO, check=True, timeout=600)

    process = subprocess.Popen(
        _train_command(cut), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    progress = ProgressWatcher(process.stdout)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        saved = _checkpoint_step(cut / "checkpoint")
        if saved is None or progress.step < saved + 3:
            time.sleep(0.01)
            continue
        # Looked like the moment; a loaded machine may have moved on since (a new checkpoint,
        # the next epoch). Stopped, the run cannot move: check again, kill or let it go on.
        process.send_signal(signal.SIGSTOP)
        stopped = _checkpoint_step(cut / "checkpoint")
        if stopped is not None and stopped % CHECKPOINT_EVERY == 0 and stopped < progress.step:
            break
        process.send_signal(signal.SIGCONT)
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = progress.step
    state = read_state(cut / "checkpoint")
    assert state.global_step % CHECKPOINT_EVERY == 0 and state.step_in_epoch > 0
    assert killed_at > state.global_step, "killed at a checkpoint: nothing left to redo"
    assert state.epoch == 0 and not state.finished

    resumed = subprocess.run(
        _train_command(cut, "--resume", "--quiet"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = read_state(cut / "checkpoint")
    assert final.finished and final.epoch == 2
    assert final.global_step == read_state(straight / "checkpoint").global_step
    recorded = [(out / "run" / "precision.json").read_text() for out in (straight, cut)]
    assert recorded[0] == recorded[1], "the two runs computed in different dtypes"
    expected = _checkpoint_values(straight / "checkpoint")
    got = _checkpoint_values(cut / "checkpoint")
    assert set(got) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, atol=1e-6, err_msg=key)
    for a, b in zip(_weights(straight / "model"), _weights(cut / "model"), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.slow
def test_same_seed_same_model(tmp_path: Path) -> None:
    corpus = REPO / "corpora" / "dialogue-en.jsonl"
    config = ExperimentConfig().with_overrides(tiny_overrides(**{"model.dropout": 0.1}))
    for name in ("a", "b"):
        train(config, CorpusSpec((corpus,)), RunOptions(tmp_path / name, verbose=0))
    for a, b in zip(
        _weights(tmp_path / "a" / "model"), _weights(tmp_path / "b" / "model"), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    config = ExperimentConfig().with_overrides(tiny_overrides())
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        train(
            config,
            CorpusSpec((REPO / "corpora" / "dialogue-en.jsonl",)),
            RunOptions(tmp_path / "nothing", resume=True, verbose=0),
        )


def test_a_new_run_in_an_old_runs_directory_starts_without_its_checkpoints(
    tmp_path: Path,
) -> None:
    """Trained again into a run's directory (no --resume), the old run's checkpoints stayed
    the latest until the new run's first save: a kill before it, then `--resume`, went on
    from the old run's weights and counters. They are gone when the new run starts."""
    from nlp.model import Seq2Seq
    from nlp.training.trainer import CHECKPOINT_DIR, Trainer
    from nlp.util.config import ModelConfig, TrainConfig

    stale = tmp_path / CHECKPOINT_DIR
    stale.mkdir()
    (stale / "checkpoint").write_text('model_checkpoint_path: "ckpt-9999"\n')
    (stale / "ckpt-9999.index").write_bytes(b"the old run's")
    rng = random.Random(0)
    data = [([rng.randrange(4, 30) for _ in range(4)], [rng.randrange(4, 30), 2])
            for _ in range(16)]
    model = Seq2Seq(ModelConfig(vocab_size=30, embedding_dim=8, units=8))
    trainer = Trainer(model, TrainConfig(batch_size=8, epochs=1), tmp_path, verbose=0)
    trainer.fit(data, data[:4])
    assert not (stale / "ckpt-9999.index").exists()
    assert "ckpt-9999" not in (stale / "checkpoint").read_text()
    assert read_state(stale).epoch == 1
