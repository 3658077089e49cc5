"""The headline ablation keeps the results of the corpora it was not asked to run again."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import benchmarks.headline_ablation as ablation


def test_running_one_corpus_keeps_the_other_s_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BENCHMARKS runs `--only headlines-en`, then `--only headlines-zh`: the second run
    wrote its corpus alone over the file. Training and scoring are stubbed: the file is what
    is tested."""
    monkeypatch.setattr(ablation, "run_script", lambda *args, **kwargs: 0.1)
    monkeypatch.setattr(ablation, "score", lambda *args, **kwargs: {
        "unit": "char", "model": {"rougeL_f1": 0.2}, "lead_sentence": {}})
    monkeypatch.setattr(ablation, "training_info", lambda directory: {
        "epochs_run": 1, "kept_epoch": 1, "best": None, "decoding": {}})
    out = tmp_path / "ablation.json"
    for only in ("headlines-en", "headlines-zh"):
        monkeypatch.setattr(sys, "argv", ["headline_ablation", "--only", only, "--minutes", "1",
                                          "--work", str(tmp_path / "work"), "--out", str(out)])
        ablation.main()
    assert set(json.loads(out.read_text("utf-8"))) == {"headlines-en", "headlines-zh"}
