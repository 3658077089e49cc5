"""benchmarks/serve_load.py at tiny size: the server, the bot (long-polling and in webhook
mode) and the batch job measured in one run on the same tiny models, every row present and
the ratios set beside each other.

Figures are not checked (tiny models on a shared machine), only that each part ran and
answered what it was offered: the benchmark is meant to be run on a quiet machine, and a
broken import or a renamed helper should show up here, not there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import serve_load


@pytest.mark.slow
def test_the_server_the_bot_and_the_batch_job_are_measured_in_one_run(
    tiny_bundle: Path, tiny_headline_bundle: Path, tmp_path: Path
) -> None:
    output = tmp_path / "serve_load.json"
    assert serve_load.main([
        "--chat-model", str(tiny_bundle), "--headline-model", str(tiny_headline_bundle),
        "--rates", "4", "--duration", "1", "--headline-batch", "2", "--peak-size", "64",
        "--output", str(output),
    ]) == 0
    result = json.loads(output.read_text("utf-8"))
    rows = {(row["endpoint"], row["offered_rps"]): row for row in result["rows"]}
    assert set(rows) == {
        ("chat", 4.0), ("headlines", 4.0), (serve_load.BOT, 4.0), (serve_load.BOT_WEBHOOK, 4.0),
        (serve_load.BATCH_JOB, ""),
    }
    for endpoint in ("chat", "headlines"):
        row = rows[(endpoint, 4.0)]
        assert row["answered"] == 4 and row["errors"] == 0
        # the level's stages, from the server's /metrics before and after it: every request
        # is read (too fast to show in the rounded seconds); batching can only make the calls
        # fewer
        assert 1 <= row["stage_calls"]["tokenize"] <= 4
        assert row["p99_ms"] >= row["p95_ms"]
    # every headline request is decoded; a chat message only where no retrieved reply fits
    assert rows[("headlines", 4.0)]["stage_seconds"]["decode"] > 0
    assert "decode" in rows[("headlines", 4.0)]["stage_ms"]
    assert 1 <= rows[("headlines", 4.0)]["stage_calls"]["decode"] <= 4
    assert 0 <= rows[("chat", 4.0)]["stage_calls"].get("decode", 0) <= 4
    for mode in (serve_load.BOT, serve_load.BOT_WEBHOOK):  # long polling, then webhook mode
        bot = rows[(mode, 4.0)]
        assert bot["answered"] == 4 and bot["exactly_once_in_order"] and bot["p95_ms"] > 0
    assert rows[(serve_load.BATCH_JOB, "")]["items_per_second"] > 0
    peak = result["matmul_peak_gflops"]
    assert peak["before"] > 0 and peak["after"] > 0
    assert set(result["ratios"]) == {
        "bot / server chat at 4 req/s",
        "bot in webhook mode / server chat at 4 req/s",
        "server headlines at 4 req/s / batch job, articles/s",
    }
    assert result["ratios"]["bot / server chat at 4 req/s"]["answered_rps"] > 0
