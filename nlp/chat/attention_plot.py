"""The /why picture: which input tokens each reply token attended to, as a PNG heatmap (for
a retrieved reply, which no decoder wrote, the model's attention while it scores it).

Rendered with matplotlib's object API on the Agg canvas (no pyplot, no global backend switch,
no display), so it is safe in a worker thread and in a headless bot. matplotlib is imported
on first use: the bot should not pay its import time at start-up.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nlp.generation.text_generator import UNWRITTEN

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_SOURCE_TOKENS = 80
MAX_OUTPUT_TOKENS = 60
CJK_FONT_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
)


PACKAGED_CJK_FONT = "NotoSansCJKsc-Regular.otf"  # in mplfonts (SIL Open Font License)


def packaged_cjk_font() -> Path | None:
    """Noto Sans CJK SC as shipped by the `mplfonts` package (a project dependency), found on
    disk: the package is only a font carrier here, nothing of it needs importing."""
    spec = importlib.util.find_spec("mplfonts")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "fonts" / PACKAGED_CJK_FONT
    return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def cjk_font_family() -> str | None:
    """A font family that can draw Chinese: the packaged Noto Sans CJK SC, registered with
    matplotlib on first use, else the first suitable installed one, else None."""
    from matplotlib import font_manager

    packaged = packaged_cjk_font()
    if packaged is not None:
        font_manager.fontManager.addfont(str(packaged))
        return font_manager.FontProperties(fname=str(packaged)).get_name()
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FONT_FAMILIES if family in installed), None)


def _is_wide(token: str) -> bool:
    return any(unicodedata.east_asian_width(ch) in "WF" for ch in token)


def _labels(tokens: Sequence[str], can_draw_wide: bool) -> list[str]:
    if can_draw_wide:
        return list(tokens)
    return [t.encode("ascii", "backslashreplace").decode() if _is_wide(t) else t for t in tokens]


@dataclass(frozen=True)
class PlotText:
    """What the picture calls its parts: the task decides (a headline is not a reply)."""

    title: str = "Attention of the last reply"
    source: str = "input tokens"
    output: str = "reply tokens"
    # where a long input is cropped from: a chat input ends with the message the reply
    # answers (earlier turns first, the codec keeps its tail), an article starts with its lead
    keeps_end: bool = False


TASK_TEXT: dict[str, PlotText] = {
    "chat": PlotText("Attention while writing the reply", "message tokens", "reply tokens",
                     keeps_end=True),
    "headline": PlotText(
        "Attention while writing the headline", "article tokens", "headline tokens"
    ),
}


# A retrieved reply was written by a person, not by the model: its picture is the model's
# attention while it reads the message and is fed the reply's tokens one by one (teacher
# forcing), as it does when it scores the reply (`TextGenerator.with_attention`).
SCORED_TEXT = PlotText(
    "Attention while scoring a retrieved reply (teacher-forced)", "message tokens", "reply tokens",
    keeps_end=True,
)


def plot_text(task: str, provenance: str = "generated") -> PlotText:
    """What the picture of an output of `task` and `provenance` (`Generation.provenance`)
    is called: the picture of the model writing it, or of it scoring a retrieved reply."""
    if provenance in UNWRITTEN:
        return SCORED_TEXT
    return TASK_TEXT.get(task, PlotText())


def shown_tokens(tokens: Sequence[str], slots: Mapping[str, str]) -> list[str]:
    """Tokens as the user wrote and reads them: each placeholder ("phmoney1") replaced by the
    string it stands for ("8391.9亿元")."""
    return [slots.get(token, token) for token in tokens]


def render_attention_png(
    source_tokens: Sequence[str],
    output_tokens: Sequence[str],
    attention: np.ndarray,
    *,
    slots: Mapping[str, str] | None = None,
    text: PlotText | None = None,
) -> bytes:
    """`attention_figure` as PNG bytes."""
    figure = attention_figure(source_tokens, output_tokens, attention, slots=slots, text=text)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def attention_figure(
    source_tokens: Sequence[str],
    output_tokens: Sequence[str],
    attention: np.ndarray,
    *,
    slots: Mapping[str, str] | None = None,
    text: PlotText | None = None,
) -> Figure:
    """A heatmap with output tokens as rows and source tokens as columns (an Agg Figure).

    Placeholder tokens are labelled with the strings they stand for (`slots`). Long sequences
    are cropped (the picture must stay a sensible size for a phone screen and within
    Telegram's photo limits) and the crop is said in the title. Wide (CJK) tokens are drawn
    with the packaged CJK font (or an installed one); without any they appear as \\u escapes
    with a note saying so, instead of as empty boxes.
    """
    text = text or PlotText()
    source_tokens = shown_tokens(source_tokens, slots or {})
    output_tokens = shown_tokens(output_tokens, slots or {})
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    weights = np.asarray(attention, dtype=np.float32)
    if weights.ndim != 2:
        raise ValueError(f"attention must be [output, source], got shape {weights.shape}")
    rows = min(len(output_tokens), weights.shape[0], MAX_OUTPUT_TOKENS)
    shown = min(len(source_tokens), weights.shape[1])
    cols = min(shown, MAX_SOURCE_TOKENS)
    start = shown - cols if text.keeps_end else 0
    weights = weights[:rows, start:start + cols]
    all_source = len(source_tokens)
    source_tokens = source_tokens[start:start + cols]
    family = cjk_font_family()
    needs_wide = any(map(_is_wide, [*source_tokens, *output_tokens[:rows]]))
    font: dict[str, Any] = {"fontfamily": [family, "DejaVu Sans"]} if family else {}
    if rows == 0 or cols == 0:
        raise ValueError("nothing to draw: the reply or the input has no tokens")

    figure = Figure(figsize=(max(4.0, 0.32 * cols + 2.0), max(3.0, 0.32 * rows + 1.8)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0)
    figure.colorbar(image, ax=axes, fraction=0.04)
    can_draw_wide = family is not None
    axes.set_xticks(
        range(cols), _labels(source_tokens, can_draw_wide), rotation=90, fontsize=8, **font
    )
    axes.set_yticks(range(rows), _labels(output_tokens[:rows], can_draw_wide), fontsize=8, **font)
    axes.set_xlabel(text.source)
    axes.set_ylabel(text.output)
    title = text.title
    if rows < len(output_tokens) or cols < all_source:
        which = "last" if start else "first"
        title += f" (first {rows} of {len(output_tokens)} x {which} {cols} of {all_source})"
    axes.set_title(title, fontsize=10, **font)
    if needs_wide and family is None:
        note = "No CJK font found (install mplfonts): wide tokens are shown as \\u escapes."
        figure.text(0.01, 0.005, note, fontsize=7)
    figure.tight_layout()
    return figure
