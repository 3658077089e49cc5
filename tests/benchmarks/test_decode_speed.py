"""benchmarks/decode_speed.py runs its parts (a variant, the projection bound) without error;
figures are not checked (a shared machine), only that each part measures something."""

from __future__ import annotations

import pytest

from benchmarks import decode_speed


@pytest.mark.slow
def test_a_variant_and_the_projection_bound_are_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(decode_speed, "VARIANTS", {"beam5_b1": ("beam", 1, 2)})
    monkeypatch.setattr(decode_speed, "REPEATS", 1)
    row = decode_speed.measure("beam5_b1")
    assert row["variant"] == "beam5_b1" and row["ms_per_sentence"] > 0
    assert decode_speed.projection_ms(5) > 0
