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
    # A one-epoch model may end its reply at once; a minimum length gives it tokens to draw.
    assert attention(tiny_bundle, "how are you today?", out, "--greedy", "--retrieve", "0",
                     "--min-length", "3") == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "attention heatmap written" in capsys.readouterr().out


def test_attention_without_tokens_is_a_clear_error(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert attention(tiny_bundle, "   ", tmp_path / "a.png") == 1
    assert "no tokens" in capsys.readouterr().err
    # options that neither write nor retrieve: said of the options, not blamed on the text
    assert attention(tiny_bundle, "how are you?", tmp_path / "b.png", "--no-generated",
                     "--retrieve", "0") == 1
    assert "neither write nor retrieve" in capsys.readouterr().err


def test_attention_titles_the_picture_by_the_models_task(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nlp.chat import attention_plot

    drawn: list[dict[str, object]] = []
    real = attention_plot.render_attention_png

    def recording(*args: object, **kwargs: object) -> bytes:
        drawn.append(kwargs)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(attention_plot, "render_attention_png", recording)
    assert (
        attention(
            tiny_bundle, "how are you today?", tmp_path / "a.png", "--greedy", "--retrieve", "0",
            "--min-length", "3"
        )
        == 0
    )
    (kwargs,) = drawn
    assert kwargs["text"] == attention_plot.TASK_TEXT["chat"]  # the tiny bundle is a chat model
    assert isinstance(kwargs["slots"], dict)
