"""The project's one decoder: greedy, beam search and sampling in a single compiled loop.

`DecodeOptions` and `Hypothesis` import without TensorFlow (for the bot and the CLI);
`Decoder` loads TensorFlow on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nlp.decoding.hypothesis import Hypothesis
from nlp.decoding.options import RERANK_NAMES, STRATEGY_NAMES, DecodeOptions

if TYPE_CHECKING:
    from nlp.decoding.decoder import Decoder

__all__ = ["RERANK_NAMES", "STRATEGY_NAMES", "DecodeOptions", "Decoder", "Hypothesis"]


def __getattr__(name: str) -> Any:
    if name == "Decoder":
        from nlp.decoding.decoder import Decoder

        return Decoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
