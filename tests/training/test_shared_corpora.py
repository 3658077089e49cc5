"""One epoch through the CLI on real corpora from ../shared/corpora (skipped when absent)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_CORPORA, tiny_overrides

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not SHARED_CORPORA.is_dir(),
    reason=f"real corpora not found at {SHARED_CORPORA} (the team's machines and CI have them)",
)]  # slow: trains through the CLI in a process


def s2s(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s2s.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )


# Records the training tests read: the corpus's first lines, as written (every format here
# holds one record a line). The readers' tests read the whole files
# (tests/corpus/test_shared_corpora.py); an epoch over all of them would only cost minutes.
TRAIN_LINES = 2000


def head(corpus: Path, directory: Path) -> Path:
    """The first `TRAIN_LINES` lines of `corpus`, byte for byte, under the same name."""
    directory.mkdir(parents=True, exist_ok=True)
    part = directory / corpus.name
    with corpus.open("rb") as source, part.open("wb") as target:
        for _, line in zip(range(TRAIN_LINES), source, strict=False):
            target.write(line)
    return part


def train_one_epoch(corpus: Path, fmt: str, out: Path, *extra: str) -> None:
    result = s2s(
        "train",
        "--corpus",
        str(head(corpus, out.parent / "head")),
        "--format",
        fmt,
        "--out",
        str(out),
        "--quiet",
        "--epochs",
        "1",
        *(f"--set={s}" for s in tiny_overrides(**{"train.batch_size": 64})),
        *extra,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "kept" in result.stderr  # the corpus report
    assert (out / "model" / "metadata.json").exists()


def test_one_epoch_on_lccc_dialogue(tmp_path: Path) -> None:
    train_one_epoch(
        SHARED_CORPORA / "dialogue-zh" / "lccc" / "toy_train.txt",
        "lccc",
        tmp_path / "lccc",
        "--set=tokenizer.kind=jieba",
        "--set=retrieval.dual_encoder_minutes=0.05",  # the ranker's own tests train it longer
    )


def test_one_epoch_on_lcsts_headlines_then_rouge(tmp_path: Path) -> None:
    lcsts = SHARED_CORPORA / "headlines-zh" / "lcsts"
    out = tmp_path / "lcsts"
    train_one_epoch(
        lcsts / "train.tsv",
        "lcsts-tsv",
        out,
        "--set=data.task=headline",  # no retrieval index or dual encoder: not a chat model
        "--set=tokenizer.kind=jieba",
        "--set=tokenizer.placeholders=true",
        "--set=model.copy=true",
        "--set=train.max_source_length=60",
    )
    result = s2s(
        "evaluate",
        "--model",
        str(out),
        "--corpus",
        str(lcsts / "val.tsv"),
        "--format",
        "lcsts-tsv",
        "--metric",
        "rouge",
        "--metric",
        "loss",
        "--limit",
        "40",
        "--greedy",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["rouge"]["unit"] == "char"
    assert set(report["rouge"]) >= {"model", "lead_sentence", "lead_n"}
    assert report["loss"]["perplexity"] > 1.0
