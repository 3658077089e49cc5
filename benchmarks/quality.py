"""Shared by the quality benchmarks: train one model within a time budget, then score it."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR
from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.generation.generator import Generator
from nlp.training.corpus_io import CorpusSpec, load_pairs
from nlp.training.run import VALID_FILE, RunOptions, train
from nlp.util.config import ExperimentConfig

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"
BASE_SETTINGS = [
    "model.embedding_dim=128",
    "model.units=256",
    "model.dropout=0.2",
    "train.batch_size=64",
    "train.learning_rate=0.002",
    "train.patience=3",
    "train.checkpoint_every=1000",
]  # the same model size and optimiser for every quality benchmark


@dataclass
class QualityRun:
    """One language's experiment: the data, the settings and how to score it."""

    name: str
    train: CorpusSpec
    test: CorpusSpec | None  # None: the seeded share of `train` held out during training
    settings: list[str]
    decode: DecodeOptions


def reuse_trained(run: QualityRun, work: Path) -> tuple[Generator, dict[str, Any]] | None:
    """The model a previous run of the benchmark left in `work`, to score it again."""
    state_file = work / run.name / "checkpoint" / "state.json"
    if not state_file.exists():
        return None
    state = json.loads(state_file.read_text("utf-8"))
    return Generator.from_bundle(work / run.name), {**_training_info(state), "reused": True}


def _training_info(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "epochs": state["epoch"],
        "steps": state["global_step"],
        "train_minutes": round(state["train_seconds"] / 60, 2),
        "best_epoch": state["best_epoch"],
        "history": state["history"],
    }


def train_within_budget(
    run: QualityRun, work: Path, minutes: float
) -> tuple[Generator, dict[str, Any]]:
    """Train `run` for at most `minutes` of training steps; returns the best model."""
    config = ExperimentConfig().with_overrides([*run.settings, f"train.max_minutes={minutes}"])
    started = time.monotonic()
    state = train(config, run.train, RunOptions(work / run.name, verbose=0))
    info = {
        "settings": run.settings,
        "budget_minutes": minutes,
        "wall_minutes": round((time.monotonic() - started) / 60, 2),
        **_training_info(asdict(state)),
    }
    return Generator.from_bundle(work / run.name), info


def test_pairs(run: QualityRun, work: Path, limit: int) -> list[Pair]:
    spec = run.test or CorpusSpec((work / run.name / VALID_FILE,), "jsonl")
    pairs = load_pairs(spec)
    return pairs[:limit] if limit else pairs


def run_all(
    runs: Sequence[QualityRun],
    work: Path,
    minutes: float,
    score: Callable[[QualityRun, Generator, dict[str, Any]], dict[str, Any]],
    out: Path,
    reuse: bool = False,
) -> dict[str, Any]:
    """Train and score every run, writing the JSON after each so a long job keeps its results."""
    results: dict[str, Any] = {}
    for run in runs:
        found = reuse_trained(run, work) if reuse else None
        generator, info = found or train_within_budget(run, work, minutes)
        results[run.name] = {**info, **score(run, generator, info)}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return results


def arguments(doc: str, name: str) -> argparse.Namespace:
    """The options every quality benchmark takes: budget, test size, where to write."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget per model")
    parser.add_argument("--limit", type=int, default=1000, help="test pairs per language")
    parser.add_argument("--work", type=Path, default=Path("runs") / name, help="run directory")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / f"{name}.json")
    parser.add_argument(
        "--reuse", action="store_true", help="score the models already trained in --work again"
    )
    return parser.parse_args()
