"""A score calibrated as a probability on (score, label) pairs (`nlp.metrics.calibration`)."""

from __future__ import annotations

import numpy as np
import pytest

from nlp.metrics.calibration import Calibration, fit_calibration


def separated(pairs: int = 4000, share: float = 0.1, seed: int = 0) -> tuple[np.ndarray,
                                                                                np.ndarray]:
    """Scores of unit variance, the positives (`share` of them) one unit higher on average."""
    rng = np.random.default_rng(seed)
    labels = rng.random(pairs) < share
    return rng.normal(0.0, 1.0, pairs) + labels, labels


def test_a_higher_score_is_a_likelier_positive() -> None:
    scores, labels = separated()
    calibration = fit_calibration(scores, labels)
    assert calibration.slope > 0
    assert (calibration.pairs, calibration.positives) == (4000, int(labels.sum()))
    grid = np.linspace(-3, 4, 50)
    probabilities = calibration.probability(grid)
    assert np.all(np.diff(probabilities) > 0) and np.all((probabilities > 0) & (probabilities < 1))
    # calibrated: the mean probability is the share of positives
    assert float(calibration.probability(scores).mean()) == pytest.approx(labels.mean(), abs=0.01)
    # the generating model's log-odds have slope 1 (unit variance, one unit apart)
    assert calibration.slope == pytest.approx(1.0, abs=0.25)


def test_the_fit_does_not_depend_on_the_scores_scale_or_offset() -> None:
    scores, labels = separated()
    plain, scaled = fit_calibration(scores, labels), fit_calibration(50.0 * scores - 7.0, labels)
    grid = np.array([-2.0, 0.0, 1.0, 3.0])
    assert scaled.probability(50.0 * grid - 7.0) == pytest.approx(
        plain.probability(grid), rel=1e-4)


def test_a_perfect_ranker_gets_a_finite_fit_and_lost_scores_are_left_out() -> None:
    scores = [2.0, 0.0, -1.0, 3.0, 1.0, 0.5, 1.5, -np.inf, np.nan]
    labels = [1, 0, 0, 1, 0, 0, 1, 0, 1]
    calibration = fit_calibration(scores, labels)
    assert np.isfinite(calibration.slope) and calibration.slope > 0
    assert (calibration.pairs, calibration.positives) == (7, 3)
    low, middle, high = calibration.probability([-1.0, 1.0, 3.0])
    assert low < middle < high < 1.0


def test_the_fit_is_monotone_even_where_lower_scores_were_positive() -> None:
    """Scores that rank the positives last do not turn the order round: the slope stays at
    0, every score gets the share of positives."""
    scores, labels = separated()
    calibration = fit_calibration(-scores, labels)
    assert calibration.slope == 0.0
    assert calibration.probability([-5.0, 5.0]) == pytest.approx([labels.mean()] * 2, abs=0.01)


def test_pairs_without_a_positive_or_a_negative_are_refused() -> None:
    with pytest.raises(ValueError, match="positives and negatives"):
        fit_calibration([], [])
    with pytest.raises(ValueError, match="positives and negatives"):
        fit_calibration([1.0, 2.0], [0, 0])
    with pytest.raises(ValueError, match="one label a score"):
        fit_calibration([1.0, 2.0], [1])


def test_it_is_stored_as_its_two_numbers_and_what_it_was_fitted_on() -> None:
    fitted = Calibration(2.0, -1.0, pairs=110, positives=10)
    assert fitted.to_json() == {"slope": 2.0, "intercept": -1.0, "pairs": 110, "positives": 10}
    assert Calibration.from_json(fitted.to_json()) == fitted
    assert float(fitted.probability(0.5)) == pytest.approx(0.5)
