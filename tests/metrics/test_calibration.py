"""A ranker's score calibrated as the probability of the true reply (`nlp.metrics.calibration`)
and where the tuner's calibration is kept (`DecodeSettings.calibration`)."""

from __future__ import annotations

import numpy as np
import pytest

from nlp.decoding import DecodeOptions
from nlp.generation.decode_settings import CALIBRATION, DecodeSettings
from nlp.metrics.calibration import Calibration, fit_calibration


def separated_table(posts: int = 400, k: int = 10, seed: int = 0) -> np.ndarray:
    """Column 0 (the true reply) scores one unit higher on average than the distractors."""
    rng = np.random.default_rng(seed)
    table = rng.normal(0.0, 1.0, (posts, k))
    table[:, 0] += 1.0
    return table


def test_a_higher_score_is_a_likelier_true_reply() -> None:
    table = separated_table()
    calibration = fit_calibration(table)
    assert calibration.slope > 0 and (calibration.posts, calibration.k) == (400, 10)
    grid = np.linspace(-3, 4, 50)
    probabilities = calibration.probability(grid)
    assert np.all(np.diff(probabilities) > 0) and np.all((probabilities > 0) & (probabilities < 1))
    # calibrated: the mean probability over every cell is the share of true replies (1/K)
    assert float(calibration.probability(table).mean()) == pytest.approx(0.1, abs=0.01)
    # the generating model's log-odds have slope 1 (unit variance, one unit apart)
    assert calibration.slope == pytest.approx(1.0, abs=0.25)


def test_the_fit_does_not_depend_on_the_scores_scale_or_offset() -> None:
    table = separated_table()
    plain, scaled = fit_calibration(table), fit_calibration(50.0 * table - 7.0)
    scores = np.array([-2.0, 0.0, 1.0, 3.0])
    assert scaled.probability(50.0 * scores - 7.0) == pytest.approx(
        plain.probability(scores), rel=1e-4)


def test_a_perfect_ranker_gets_a_finite_fit_and_lost_cells_are_left_out() -> None:
    table = np.array([[2.0, 0.0, -1.0], [3.0, 1.0, 0.5], [1.5, -np.inf, np.nan]])
    calibration = fit_calibration(table)
    assert np.isfinite(calibration.slope) and calibration.slope > 0
    low, middle, high = calibration.probability([-1.0, 1.0, 3.0])
    assert low < middle < high < 1.0


def test_a_table_without_distractors_or_posts_is_refused() -> None:
    with pytest.raises(ValueError, match="K >= 2"):
        fit_calibration(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="K >= 2"):
        fit_calibration(np.zeros((4, 1)))


def test_the_bundle_settings_keep_a_calibration_per_ranker() -> None:
    fitted = Calibration(2.0, -1.0, posts=10, k=20)
    settings = DecodeSettings(DecodeOptions(), "tuned",
                              {CALIBRATION: {"dual-encoder": fitted.to_json()}})
    again = DecodeSettings.from_json(settings.to_json(), "decoding.json")
    assert again.calibration("dual-encoder") == fitted
    assert again.calibration("likelihood") is None
    assert DecodeSettings(DecodeOptions(), "defaults").calibration("dual-encoder") is None
