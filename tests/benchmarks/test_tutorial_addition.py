"""benchmarks/tutorial_addition.py trains through `s2s train` in a process and scores sums it
never trained on; at a tiny scale here, so only that it runs, what it reports and that the
scored sums are unseen are checked (the 99% is the benchmark's figure, docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from benchmarks import tutorial_addition


def test_addition_pairs_are_the_keras_task() -> None:
    rng = random.Random(0)
    for _ in range(200):
        source, target = tutorial_addition.addition_pair(rng)
        a, b = source.split("+")
        assert 0 <= int(a) <= 999 and 0 <= int(b) <= 999 and int(target) == int(a) + int(b)


@pytest.mark.slow  # trains in a process
def test_a_tiny_run_scores_only_unseen_sums_and_writes_its_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scored: list[list[tuple[str, str]]] = []
    real = tutorial_addition.exact_match

    def recording(model_dir: Path, pairs: list[tuple[str, str]]) -> float:
        scored.append(pairs)
        return real(model_dir, pairs)

    monkeypatch.setattr(tutorial_addition, "exact_match", recording)
    monkeypatch.setattr(tutorial_addition, "matmul_peak", lambda: 1.0)
    results = tmp_path / "addition.json"
    tutorial_addition.main(["--pairs", "300", "--epochs", "1", "--fresh", "20",
                            "--set", "model.units=8", "--results", str(results)])
    row = json.loads(results.read_text())
    assert row["pairs"] == 300 and row["epochs"] == 1 and row["fresh_sums"] == 20
    assert row["train_seconds"] > 0 and row["exact_match"] * 20 == round(row["exact_match"] * 20)
    assert "model.units=8" in row["settings"] and "train.epochs=1" in row["settings"]
    rng = random.Random(7)
    trained = {tutorial_addition.addition_pair(rng)[0] for _ in range(300)}
    (pairs,) = scored
    assert len(pairs) == 20 and not trained & {source for source, _ in pairs}
