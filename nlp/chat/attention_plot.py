"""The /why picture: which input tokens each reply token attended to, as a PNG heatmap.

Rendered with matplotlib's object API on the Agg canvas (no pyplot, no global backend switch,
no display), so it is safe in a worker thread and in a headless bot. matplotlib is imported
on first use: the bot should not pay its import time at start-up.
"""

from __future__ import annotations

import functools
import io
import unicodedata
from collections.abc import Sequence

import numpy as np

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


@functools.lru_cache(maxsize=1)
def cjk_font_family() -> str | None:
    """The first installed font family that can draw Chinese/Japanese/Korean, if any."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FONT_FAMILIES if family in installed), None)


def _is_wide(token: str) -> bool:
    return any(unicodedata.east_asian_width(ch) in "WF" for ch in token)


def _labels(tokens: Sequence[str], can_draw_wide: bool) -> list[str]:
    if can_draw_wide:
        return list(tokens)
    return [t.encode("ascii", "backslashreplace").decode() if _is_wide(t) else t for t in tokens]


def render_attention_png(
    source_tokens: Sequence[str], output_tokens: Sequence[str], attention: np.ndarray
) -> bytes:
    """A heatmap with output tokens as rows and source tokens as columns, as PNG bytes.

    Long sequences are cropped (the picture must stay a sensible size for a phone screen and
    within Telegram's photo limits) and the crop is said in the title. Wide (CJK) tokens are
    drawn with a CJK font when one is installed; otherwise they appear as \\u escapes with a
    note saying so, instead of as empty boxes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    weights = np.asarray(attention, dtype=np.float32)
    if weights.ndim != 2:
        raise ValueError(f"attention must be [output, source], got shape {weights.shape}")
    rows = min(len(output_tokens), weights.shape[0], MAX_OUTPUT_TOKENS)
    cols = min(len(source_tokens), weights.shape[1], MAX_SOURCE_TOKENS)
    weights = weights[:rows, :cols]
    family = cjk_font_family()
    needs_wide = any(map(_is_wide, [*source_tokens[:cols], *output_tokens[:rows]]))
    font = {"fontfamily": [family, "DejaVu Sans"]} if family else {}
    if rows == 0 or cols == 0:
        raise ValueError("nothing to draw: the reply or the input has no tokens")

    figure = Figure(figsize=(max(4.0, 0.32 * cols + 2.0), max(3.0, 0.32 * rows + 1.8)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0)
    figure.colorbar(image, ax=axes, fraction=0.04)
    can_draw_wide = family is not None
    axes.set_xticks(
        range(cols), _labels(source_tokens[:cols], can_draw_wide), rotation=90, fontsize=8, **font
    )
    axes.set_yticks(range(rows), _labels(output_tokens[:rows], can_draw_wide), fontsize=8, **font)
    axes.set_xlabel("input tokens")
    axes.set_ylabel("reply tokens")
    title = "Attention of the last reply"
    if rows < len(output_tokens) or cols < len(source_tokens):
        title += f" (first {rows} of {len(output_tokens)} x {cols} of {len(source_tokens)})"
    axes.set_title(title, fontsize=10)
    if needs_wide and family is None:
        note = "No CJK font installed (e.g. fonts-noto-cjk): wide tokens are shown as \\u escapes."
        figure.text(0.01, 0.005, note, fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
