"""A fast stand-in generator for tests and benchmarks: no model, no TensorFlow.

Selected on the command line with ``--model fake://`` (``fake://?words=8&delay=0.05``:
echo the first `words` words, or characters for text without spaces, sleeping `delay`
seconds per batch to imitate decoding time). It lets the tests kill a real CLI run and the
memory benchmark push a million lines through the real job in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from nlp.decoding import DecodeOptions

SCHEME = "fake://"


@dataclass(frozen=True)
class FakeGeneration:
    """The two fields of `nlp.generator.Generation` that headline jobs read."""

    text: str
    score: float


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

    def generate(self, texts: Sequence[str], options: DecodeOptions) -> list[list[FakeGeneration]]:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return [
            [
                FakeGeneration(self._echo(t, self.words - k), float(-k))
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
