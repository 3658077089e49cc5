"""Argument types the commands share: one definition of what a count option accepts."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An argparse type for counts (batch sizes): an integer of at least 1, else the option's
    own usage error (a batch size of 0 failed deep inside as "range() arg 3 must not be
    zero", a negative one as a count of hypotheses)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
