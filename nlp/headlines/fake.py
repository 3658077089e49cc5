"""A fast stand-in generator for tests and benchmarks: no model, no TensorFlow.

Selected on the command line with ``--model fake://`` (``fake://?words=8&delay=0.05``:
echo the first `words` words, or characters for text without spaces, sleeping `delay`
seconds per batch to imitate decoding time). It lets the tests kill a real CLI run and the
memory benchmark push a million lines through the real job in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

import numpy as np

from nlp.decoding import DecodeOptions
from nlp.generation import Generation

SCHEME = "fake://"


class FakeGenerator:
    """Echoes the start of each article; n-best variants are ever shorter prefixes."""

    def __init__(self, words: int = 8, delay: float = 0.0) -> None:
        self.words = words
        self.delay = delay
        self.calls = 0

    @classmethod
    def from_uri(cls, uri: str) -> FakeGenerator:
        query = parse_qs(urlsplit(uri).query)
        words = int(query.get("words", ["8"])[0])
        delay = float(query.get("delay", ["0"])[0])
        return cls(words=words, delay=delay)

    def generate(self, texts: Sequence[str], options: DecodeOptions) -> list[list[Generation]]:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return [
            [
                _generation(self._echo(t, self.words - k), float(-k))
                for k in range(options.n_best)
            ]
            for t in texts
        ]

    @staticmethod
    def _echo(text: str, count: int) -> str:
        count = max(1, count)
        words = text.split()
        if len(words) > 1:
            return " ".join(words[:count])
        return text[: count * 2]


def _generation(text: str, score: float) -> Generation:
    """A headline with the fields a batch job reads; no tokens or attention to show."""
    return Generation(text, score, text.split(), [], np.zeros((0, 0), np.float32))
