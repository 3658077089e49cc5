"""benchmarks/onednn_cpu.py: each setting of TF_ENABLE_ONEDNN_OPTS in processes of its own,
decoding with a real bundle; the training rows' own script is tested in
tests/benchmarks/test_train_throughput.py, so its call is replaced here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import onednn_cpu


@pytest.mark.slow  # decodes in two processes
def test_both_settings_decode_in_their_own_processes_and_are_written(
    tiny_headline_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[str] = []

    def train_row(setting: str, steps: int, warmup: int) -> dict[str, float]:
        trained.append(setting)
        return {"train_ms_per_step": 1.0}

    monkeypatch.setattr(onednn_cpu, "measure_train", train_row)
    articles = tmp_path / "articles.jsonl"
    articles.write_text("".join(json.dumps({"source": text}, ensure_ascii=False) + "\n"
                                for text in ("今天北京天气很好", "股市上涨了百分之三")), "utf-8")
    out = tmp_path / "onednn.json"
    onednn_cpu.main(["--model", str(tiny_headline_bundle), "--articles", str(articles),
                     "--count", "2", "--rounds", "1", "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert trained == ["0", "1"] and [row["onednn"] for row in rows] == ["0", "1"]
    assert rows[1]["onednn_in_use"] is True  # the variable reached TensorFlow in the child
    for row in rows:
        for name in onednn_cpu.DECODINGS:
            for batch in onednn_cpu.BATCHES:
                assert row[f"{name}_b{batch}_ms"] > 0
        assert row["matmul_peak_gflops"] > 0
