"""A candidate's confidence: its ranker's raw score read through the calibration that
`s2s tune-decoding` stored in the bundle, where that calibration holds.

A calibration (`nlp.metrics.calibration`) holds for the scale it was fitted on and the
candidates it was fitted among: the tuner fits each ranker on the candidate pools the chat
ranks with the configuration it chose (`nlp.tuning.calibration`), so it records what
set them (`fitted_with`): the ranker's weights (MMI's, BM25's beside the dual encoder) and
the pool (how many retrieved replies, whether and how the decoder adds its own). Options that
differ in any of them get no confidence (NaN), and a fallback threshold on them is refused
with what differs: a probability read off another scale would let nonsense through, or
hold back what fits.

`retrieval` has none: it scores a reply by how well the post it answered matches the
message, and the one reply known to fit a validation post, its own, answered the message
itself, so no validation post shows how often a retrieved reply fits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nlp.decoding.options import POST_RANKERS, DecodeOptions, OptionError
from nlp.generation.bundle import Bundle
from nlp.generation.decode_settings import CALIBRATION, DecodeSettings
from nlp.metrics.calibration import Calibration

# The options that set a ranker's scale beyond its name (`nlp.generation.rankers`).
_MMI_WEIGHTS = ("mmi_lambda", "mmi_gamma", "mmi_per_token", "length_bonus")
SCALE_FIELDS: dict[str, tuple[str, ...]] = {
    "mmi-antilm": _MMI_WEIGHTS, "mmi-bidi": _MMI_WEIGHTS, "dual-encoder+bm25": ("bm25_weight",),
}
# The options that make the pool of candidates: the retrieved replies, and the decoder's
# where it decodes (`Generator._decoded`).
POOL_FIELDS = ("retrieve", "generated")
DECODER_POOL_FIELDS = ("strategy", "n_best")


def fit_fields(options: DecodeOptions, decodes: bool) -> dict[str, Any]:
    """What a calibration of `options.rerank` holds for: its weights and its pool's options
    (`decodes`: whether the decoder adds candidates, `Generator.decodes`)."""
    names = (*SCALE_FIELDS.get(options.rerank, ()), *POOL_FIELDS,
             *(DECODER_POOL_FIELDS if decodes else ()))
    return {name: getattr(options, name) for name in names}


@dataclass(frozen=True)
class RankerCalibration:
    """A ranker's calibration and the options it holds for (`fit_fields`)."""

    rerank: str
    calibration: Calibration
    fitted_with: dict[str, Any] = field(default_factory=dict)

    def differences(self, options: DecodeOptions, decodes: bool) -> list[str]:
        """Each option whose value differs from the fit's ("bm25_weight 1 (fitted with
        0.5)"); none where the calibration holds for `options`."""
        if not self.fitted_with:
            return ["no record of the candidates it was fitted on (an older s2s "
                    "tune-decoding fitted it on Hits tables)"]
        now = fit_fields(options, decodes)
        return [f"{name} {_shown(now.get(name))} (fitted with {_shown(self.fitted_with.get(name))})"
                for name in sorted(set(now) | set(self.fitted_with))
                if now.get(name) != self.fitted_with.get(name)]

    def to_json(self) -> dict[str, Any]:
        return {**self.calibration.to_json(), "fitted_with": dict(self.fitted_with)}

    @classmethod
    def from_json(cls, rerank: str, raw: Mapping[str, Any]) -> RankerCalibration:
        return cls(rerank, Calibration.from_json(raw), dict(raw.get("fitted_with") or {}))


def stored_calibration(settings: DecodeSettings | None, rerank: str) -> RankerCalibration | None:
    """The calibration of `rerank`'s score in the bundle's decoding settings (`s2s
    tune-decoding` fits it), None without one."""
    raw = ((settings.details.get(CALIBRATION) or {}) if settings is not None else {}).get(rerank)
    return RankerCalibration.from_json(rerank, raw) if raw else None


def require_calibration(bundle: Bundle, options: DecodeOptions, decodes: bool) -> None:
    """Raise OptionError unless `options.rerank` has a calibration that holds for `options`
    (what `fallback_threshold` compares), saying why and what to do."""
    settings = bundle.decoding
    calibrated = sorted((settings.details.get(CALIBRATION) or {}) if settings else {})
    if calibrated:
        choose = f"choose a calibrated ranker (--rerank {' or '.join(calibrated)})"
        drop, instead, tune = f"{choose}, or drop", f": {choose}", ""
    else:  # nothing to choose from until the rankers are calibrated
        drop, instead, tune = "drop", "", "run `s2s tune-decoding` (it calibrates the rankers)"
    if options.rerank in POST_RANKERS:
        raise OptionError(
            f"fallback_threshold: rerank={options.rerank}'s score cannot be calibrated: it "
            "scores a reply by how well the post it answered matches the message, and the "
            f"one reply known to fit a validation post answered that post itself; {drop} "
            "fallback_threshold", tune)
    fitted = stored_calibration(settings, options.rerank)
    if fitted is None:
        raise OptionError(
            f"fallback_threshold needs rerank={options.rerank}'s score calibrated, and "
            f"{bundle.path} has no calibration of it{instead}", tune)
    differences = fitted.differences(options, decodes)
    if differences:
        raise OptionError(
            f"fallback_threshold: {bundle.path}'s calibration of rerank={options.rerank} holds "
            f"for the options it was fitted with, and these differ: {'; '.join(differences)}. "
            "Set those options", "or run `s2s tune-decoding` again")


def confidences(
    bundle: Bundle, options: DecodeOptions, decodes: bool, raw: Sequence[float]
) -> list[float]:
    """Each candidate's calibrated probability of being the fitting reply, from its ranker's
    raw score (`nlp.generation.rankers`); NaN without a calibration that holds for
    `options`."""
    fitted = stored_calibration(bundle.decoding, options.rerank)
    if fitted is None or fitted.differences(options, decodes):
        return [math.nan] * len(raw)
    return fitted.calibration.probability(np.asarray(raw, np.float64)).tolist()


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
