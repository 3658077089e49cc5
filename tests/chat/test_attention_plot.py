"""The /why heatmap renders to PNG for any token mix, with or without a CJK font."""

import io
import warnings

import numpy as np
import pytest
from matplotlib import image

from nlp.chat import attention_plot
from nlp.chat.attention_plot import render_attention_png


def pixels(png: bytes) -> np.ndarray:
    return image.imread(io.BytesIO(png))


def test_renders_a_png_of_a_sensible_size() -> None:
    png = render_attention_png(["how", "are", "you"], ["fine", "."], np.eye(2, 3))
    assert png.startswith(b"\x89PNG")
    height, width = pixels(png).shape[:2]
    assert 200 <= width <= 2000 and 200 <= height <= 2000


def test_long_sequences_are_cropped_to_stay_phone_sized() -> None:
    png = render_attention_png(
        [f"s{i}" for i in range(100)], [f"o{i}" for i in range(70)], np.ones((70, 100))
    )
    height, width = pixels(png).shape[:2]
    assert width <= 3000 and height <= 2500



def test_a_long_chat_input_keeps_its_end_where_the_message_is() -> None:
    """A chat input holds earlier turns first and the message last: the crop kept the first
    80 tokens and cut the message the reply answers; an article keeps its lead."""
    from nlp.chat.attention_plot import attention_figure, plot_text

    source = [f"s{i}" for i in range(100)]
    chat = attention_figure(source, ["o"], np.ones((1, 100)), text=plot_text("chat"))
    labels = [tick.get_text() for tick in chat.axes[0].get_xticklabels()]
    assert labels[-1] == "s99" and labels[0] == "s20"
    assert "last 80 of 100" in chat.axes[0].get_title()
    article = attention_figure(source, ["o"], np.ones((1, 100)), text=plot_text("headline"))
    assert article.axes[0].get_xticklabels()[0].get_text() == "s0"


@pytest.mark.filterwarnings("ignore:Glyph")  # DejaVu stands in for a CJK font here
@pytest.mark.parametrize("font", [None, "DejaVu Sans"])
def test_cjk_tokens_render_with_or_without_a_cjk_font(
    monkeypatch: pytest.MonkeyPatch, font: str | None
) -> None:
    monkeypatch.setattr(attention_plot, "cjk_font_family", lambda: font)
    png = render_attention_png(["你好", "世界"], ["谢谢", "😀"], np.ones((2, 2)) / 2)
    assert png.startswith(b"\x89PNG")


def test_labels_escape_wide_tokens_only_without_a_cjk_font() -> None:
    assert attention_plot._labels(["你好", "hi"], can_draw_wide=False) == ["\\u4f60\\u597d", "hi"]
    assert attention_plot._labels(["你好"], can_draw_wide=True) == ["你好"]


def test_empty_reply_is_refused_not_crashed() -> None:
    with pytest.raises(ValueError, match="nothing to draw"):
        render_attention_png(["a"], [], np.zeros((0, 1)))


CHINESE_SOURCE = "国家统计局：全年国内生产总值增长8391.9亿元，涨幅创新高。"


def test_the_cjk_font_used_has_a_glyph_for_every_character_of_a_chinese_source() -> None:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    family = attention_plot.cjk_font_family()
    assert family is not None  # the packaged Noto Sans CJK SC (mplfonts), no system font needed
    path = font_manager.findfont(font_manager.FontProperties(family=family),
                                 fallback_to_default=False)
    charmap = FT2Font(path).get_charmap()
    assert [ch for ch in CHINESE_SOURCE if ord(ch) not in charmap] == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        png = render_attention_png(list(CHINESE_SOURCE), ["增长", "亿元"], np.ones((2, 30)))
    assert png.startswith(b"\x89PNG")


def test_axes_show_placeholders_as_what_they_stand_for_and_the_task_in_the_title() -> None:
    slots = {"phmoney1": "8391.9亿元", "phpct1": "37.5%"}
    figure = attention_plot.attention_figure(
        ["生产总值", "增长", "phmoney1", "涨幅", "phpct1"], ["增长", "phmoney1"], np.ones((2, 5)),
        slots=slots, text=attention_plot.TASK_TEXT["headline"],
    )
    (axes, _colorbar) = figure.axes
    assert [t.get_text() for t in axes.get_xticklabels()] == [
        "生产总值", "增长", "8391.9亿元", "涨幅", "37.5%"
    ]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["增长", "8391.9亿元"]
    assert axes.get_title() == "Attention while writing the headline"
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("article tokens", "headline tokens")
