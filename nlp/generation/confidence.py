"""A candidate's confidence: its ranker's score read through the calibration that
`s2s tune-decoding` stored in the bundle (`nlp.metrics.calibration`), NaN without one."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nlp.generation.bundle import Bundle
from nlp.metrics.calibration import Calibration


def calibration(bundle: Bundle, rerank: str) -> Calibration | None:
    """The calibration of `rerank`'s score stored in the bundle's decoding settings
    (`s2s tune-decoding` fits it), None without one."""
    settings = bundle.decoding
    return settings.calibration(rerank) if settings is not None else None


def confidences(bundle: Bundle, rerank: str, raw: Sequence[float]) -> list[float]:
    """Each candidate's calibrated probability of being the fitting reply, from the
    score the calibration was fitted on (the Hits table's: per reply token for the
    likelihood and MMI, the cosine or the fused score for the dual encoder); NaN
    without a calibration."""
    fitted = calibration(bundle, rerank)
    if fitted is None:
        return [math.nan] * len(raw)
    return fitted.probability(np.asarray(raw, np.float64)).tolist()
