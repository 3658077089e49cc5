"""Shared argument types: a count option refuses what no count is."""

from __future__ import annotations

import pytest

from s2s.cli import main


@pytest.mark.parametrize("command", ["evaluate", "tune-decoding"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_batch_size_below_one_is_the_option_s_usage_error(
    command: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--batch-size 0` failed as "range() arg 3 must not be zero", -1 as a count of
    hypotheses."""
    with pytest.raises(SystemExit) as exited:
        main([command, "--model", "m", "--corpus", "c.jsonl", "--batch-size", value])
    assert exited.value.code == 2
    assert "--batch-size: must be at least 1" in capsys.readouterr().err
