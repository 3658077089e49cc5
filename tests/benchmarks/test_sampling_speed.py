"""benchmarks/sampling_speed.py on the tiny chat bundle: the fused and the unfused pick run on
the same seeded posts and write the same replies but for rounding (the exit status says so)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import sampling_speed

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_fused_and_the_unfused_pick_are_timed_and_agree(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    output = tmp_path / "sampling_speed.json"
    assert sampling_speed.main([
        "--model", str(tiny_bundle), "--posts", str(REPO / "corpora" / "dialogue-en.jsonl"),
        "--count", "6", "--repeats", "1", "--output", str(output),
    ]) == 0
    result = json.loads(output.read_text("utf-8"))
    assert result["replies"] >= 6
    assert result["same_replies"] >= sampling_speed.AGREEMENT * result["replies"]
    assert set(result["ms_per_post"]) == set(sampling_speed.VARIANTS)
    assert all(figures["batch_1"] > 0 for figures in result["ms_per_post"].values())
