"""The exceptions the API raises: each a `ValueError`, with the message the command line
prints for the same mistake.

Why these are the very classes the lower layers raise (not copies made here): `s2s` prints
`str(exc)` of the same exception, so a program and a person see the same words, and
`except ValueError` in older code still catches them.
"""

from __future__ import annotations

from nlp.decoding.options import OptionError
from nlp.generation.bundle import BundleError, BundleNotFoundError, ChecksumError
from nlp.util.config import ConfigError

__all__ = [
    "BundleError",
    "BundleNotFoundError",
    "ChecksumError",
    "ConfigError",
    "InputError",
    "OptionError",
    "TaskError",
]


class TaskError(ValueError):
    """The model's task does not do that: a headline model writes no replies, a chat model
    no headlines, and an `lm` model (a re-ranking companion) neither."""


class InputError(ValueError):
    """An input the model cannot read: no token of it is in its vocabulary or it is empty."""
