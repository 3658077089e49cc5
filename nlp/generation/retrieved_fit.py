"""How likely a retrieved reply makes sense after the message: the gate between the
replies people wrote to training posts and the chat model's own.

Why a gate: a retrieved reply is what a person wrote, specific and fluent, and it fits
when the post it answered says what the message says; when the post only shares a keyword
it answers something else ("do you have a favorite player?" -> a reply about a sitcom).
The model's own reply is rarely specific but usually makes sense. So a retrieved reply is
sent only where it probably fits, and the model's own elsewhere
(`DecodeOptions.retrieved_threshold`, `nlp.chat.responder.choose_reply`).

The signal is the tf-idf cosine of the message and the post the reply answered
(`ReplyIndex.post_similarity`), on one scale for every message and corpus (1: the same
words). Its calibration, P(a rater finds the reply sensible | cosine), is Platt scaling
fitted on rated validation pools (`benchmarks/sense_sheet.py fit-gate`): per language, the
bundle's own when `s2s tune-decoding --ratings` stored one, else `DEFAULT_FIT` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nlp.metrics.calibration import Calibration
from nlp.text.scripts import script_languages

# `DecodeSettings.details` key: per language, the bundle's own calibration of the signal
RETRIEVED_FIT = "retrieved_fit"

# Fitted on rated validation posts of the README's chat recipes (docs/BENCHMARKS.md
# "Retrieved or generated", with the command that fits them): the probability that the reply
# the retrieval's order puts first is rated sensible, against its post's similarity. A
# language without one here (or in the bundle) sends no retrieved reply under the gate.
DEFAULT_FIT: dict[str, Calibration] = {
    # chat-en: 100 validation posts, 42 replies rated sensible
    "en": Calibration(slope=2.5146, intercept=-1.8005, pairs=100, positives=42),
}


def message_language(text: str) -> str:
    """"zh" for a message with Han characters, else "en": the calibrations' languages."""
    return "zh" if "zh" in script_languages(text) else "en"


def fit_calibration_for(
    text: str, details: Mapping[str, Any] | None = None
) -> Calibration | None:
    """The calibration for a message in `text`'s language: the bundle's (`details`, its
    decoding settings' details), else the default; None where neither has one."""
    language = message_language(text)
    stored = ((details or {}).get(RETRIEVED_FIT) or {}).get(language)
    if stored:
        return Calibration.from_json(stored)
    return DEFAULT_FIT.get(language)


def retrieved_fit(similarity: float, calibration: Calibration | None) -> float:
    """P(sensible) of a retrieved reply whose post has `similarity` to the message; NaN
    without a calibration (then no threshold lets it through)."""
    if calibration is None:
        return float("nan")
    return float(calibration.probability([similarity])[0])
