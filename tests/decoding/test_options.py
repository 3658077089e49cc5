"""`DecodeOptions`' ranges: every number has one, stated on its field, and a value outside it
is an `OptionError` naming the option before anything reaches the compiled decoder."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nlp.decoding.options import DecodeOptions, OptionError, option_maximums, option_ranges
from nlp.decoding.params import DecodeParams

NUMBERS = {
    f.name: f.default for f in dataclasses.fields(DecodeOptions)
    if isinstance(f.default, int | float) and not isinstance(f.default, bool)
}


def test_every_numeric_option_has_a_range_and_a_request_maximum_within_it() -> None:
    ranges, maximums = option_ranges(), option_maximums()
    assert set(NUMBERS) | {"seed"} == set(ranges) == set(maximums)
    for name, (low, high) in ranges.items():
        assert low <= maximums[name] <= high, name


@pytest.mark.parametrize("name", sorted(NUMBERS))
def test_a_value_beyond_the_range_or_not_finite_is_refused_naming_the_option(name: str) -> None:
    low, high = option_ranges()[name]
    outside = [high + 1, low - 1]
    if isinstance(NUMBERS[name], float):
        outside += [float("nan"), float("inf"), float("-inf"), 1e308, -1e308]
    for value in outside:
        with pytest.raises(OptionError, match=f"^{name} must be"):
            DecodeOptions(**{name: value})


def test_the_decoder_takes_every_option_at_the_top_of_its_range() -> None:
    """Each tensor option at its most fits the decoder's dtype: no OverflowError, no inf."""
    ranges = option_ranges()
    longest = {"max_length": ranges["max_length"][1]}  # min_length and n-grams fit within it
    for name, (_, high) in ranges.items():
        options = DecodeOptions(strategy="sample", **{**longest, name: high})  # type: ignore[arg-type]
        params = DecodeParams.from_options(options, np.zeros([1, 0], np.float32))
        value = getattr(params, name, None)
        if value is not None:
            assert np.isfinite(value) and value == np.asarray(high, value.dtype), name
