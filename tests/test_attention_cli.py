"""`s2s attention` draws a readable PNG heatmap for a generated output."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2s.cli import main


def attention(bundle: Path, text: str, out: Path, *extra: str) -> int:
    return main(["attention", "--model", str(bundle), "--text", text, "--out", str(out), *extra])


def test_attention_heatmap_is_written(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "attention.png"
    assert attention(tiny_bundle, "how are you today?", out, "--greedy") == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "attention heatmap written" in capsys.readouterr().out


def test_attention_without_tokens_is_a_clear_error(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert attention(tiny_bundle, "   ", tmp_path / "a.png") == 1
    assert "no tokens" in capsys.readouterr().err
