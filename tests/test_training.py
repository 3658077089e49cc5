"""Training through the project's own code: the two tutorial tasks, resume, determinism."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, tiny_overrides, write_jsonl
from nlp.config import ExperimentConfig
from nlp.decoding import DecodeOptions
from nlp.generator import Generator
from nlp.training.corpus_io import CorpusSpec
from nlp.training.run import RunOptions, train

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def integer_pair(rng: random.Random) -> tuple[str, str]:
    numbers = [str(rng.randint(1, 50)) for _ in range(6)]
    return " ".join(numbers), " ".join(reversed(numbers[:3]))


def digits_pair(rng: random.Random) -> tuple[str, str]:
    digits = [rng.randrange(10) for _ in range(rng.randint(1, 8))]
    return " ".join(map(str, digits)), " ".join(WORDS[d] for d in digits)


def exact_match(model_dir: Path, pairs: list[tuple[str, str]]) -> float:
    generator = Generator.from_bundle(model_dir)
    outputs = generator.generate([s for s, _ in pairs], DecodeOptions(strategy="greedy"))
    return sum(o[0].text == t for o, (_, t) in zip(outputs, pairs, strict=True)) / len(pairs)


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
            }
        )
    )
    train(config, CorpusSpec((corpus,)), RunOptions(tmp_path / "run", verbose=0))
    return tmp_path / "run" / "model", rng


def test_integer_sequence_task_reaches_99_percent(tmp_path: Path) -> None:
    """The Keras tutorial task: 6 random integers in 1..50 -> the first 3 reversed."""
    model_dir, rng = train_task(tmp_path, integer_pair, 6000, epochs=6)
    fresh = [integer_pair(rng) for _ in range(100)]
    assert exact_match(model_dir, fresh) >= 0.99


def test_digits_to_words_task_reaches_99_percent(tmp_path: Path) -> None:
    model_dir, rng = train_task(tmp_path, digits_pair, 5000, epochs=10)
    fresh = [digits_pair(rng) for _ in range(100)]
    assert exact_match(model_dir, fresh) >= 0.99


def _weights(model_dir: Path) -> list[np.ndarray]:
    return [np.array(w) for w in Generator.from_bundle(model_dir).bundle.model.get_weights()]


def test_interrupted_then_resumed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    corpus = REPO / "corpora" / "dialogue-en.jsonl"
    config = ExperimentConfig().with_overrides(
        tiny_overrides(**{"train.epochs": 2, "model.dropout": 0.2, "train.checkpoint_every": 4})
    )
    spec = CorpusSpec((corpus,))
    train(config, spec, RunOptions(tmp_path / "straight", verbose=0))
    stopped = train(config, spec, RunOptions(tmp_path / "cut", verbose=0, stop_after_steps=13))
    assert stopped.global_step == 13 and not stopped.finished
    resumed = train(config, spec, RunOptions(tmp_path / "cut", resume=True, verbose=0))
    assert resumed.finished and resumed.epoch == 2
    for a, b in zip(
        _weights(tmp_path / "straight" / "model"), _weights(tmp_path / "cut" / "model"), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_killed_training_process_resumes_and_finishes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "s2s.cli",
        "train",
        "--corpus",
        str(REPO / "corpora" / "dialogue-en.jsonl"),
        "--out",
        str(out),
        "--quiet",
        "--epochs",
        "4",
        *(
            f"--set={s}"
            for s in tiny_overrides(**{"train.batch_size": 8, "train.checkpoint_every": 5})
        ),
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state_file = out / "checkpoint" / "state.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if state_file.exists() and json.loads(state_file.read_text())["global_step"] >= 10:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = json.loads(state_file.read_text())
    assert not killed_at["finished"]

    result = subprocess.run(
        [*command, "--resume"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    final = json.loads(state_file.read_text())
    assert final["finished"] and final["epoch"] == 4
    assert final["global_step"] > killed_at["global_step"]
    assert [h["epoch"] for h in final["history"]] == [1, 2, 3, 4]
    assert (out / "model" / "metadata.json").exists()


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
