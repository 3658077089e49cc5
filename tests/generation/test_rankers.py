"""The rankers of a chat reply's candidates (`nlp.generation.rankers`), on a bundle without a
model: the retrieval's order and its log softmax."""

from __future__ import annotations

import numpy as np
import pytest

from nlp.generation.rankers import _log_softmax_rows


def test_each_row_s_log_softmax_comes_out_in_one_list() -> None:
    rows = [np.array([1.0, 2.0, 3.0]), np.array([]), np.array([1000.0, 1000.0])]
    first = np.array([1.0, 2.0, 3.0])
    expected = (first - np.log(np.exp(first).sum())).tolist() + [np.log(0.5)] * 2
    assert _log_softmax_rows(rows) == pytest.approx(expected)  # no overflow at 1000
