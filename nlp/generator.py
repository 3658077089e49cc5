"""Text in, text out: the one path from a trained bundle through the shared decoder.

The headline script, `s2s evaluate`, the chat responder (and through it the Telegram bot)
all call `Generator.generate`; none of them touches TensorFlow or the decoder directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nlp.bundle import Bundle, load_bundle
from nlp.decoding import DecodeOptions, Decoder
from nlp.generation import Generation

__all__ = ["Generation", "Generator"]


class Generator:
    """Generates n-best outputs for a batch of texts with one model bundle."""

    def __init__(self, bundle: Bundle, *, jit_compile: bool = False) -> None:
        self.bundle = bundle
        self.codec = bundle.codec
        self.decoder = Decoder(bundle.model, jit_compile=jit_compile)

    @classmethod
    def from_bundle(cls, directory: Path, *, jit_compile: bool = False) -> Generator:
        """XLA (`jit_compile`) is faster per sentence but compiles once per batch size and
        length bucket (seconds each): worth it for long batch jobs, not for a chatbot's
        first replies or for tests (see `nlp.decoding.decoder.Decoder`)."""
        return cls(load_bundle(directory), jit_compile=jit_compile)

    @property
    def config(self):  # type: ignore[no-untyped-def]
        """The bundle's ExperimentConfig (data.context_turns etc. for the chat responder)."""
        return self.bundle.config

    def generate(self, texts: Sequence[str], options: DecodeOptions) -> list[list[Generation]]:
        """n-best generations per text; a text with no tokens at all gets an empty list."""
        sources = [self.codec.source(text) for text in texts]
        usable = [i for i, source in enumerate(sources) if source.ids]
        results: list[list[Generation]] = [[] for _ in texts]
        if not usable:
            return results
        hypotheses = self.decoder.decode([sources[i].ids for i in usable], options)
        for i, n_best in zip(usable, hypotheses, strict=True):
            source = sources[i]
            for hypothesis in n_best:
                tokens = self.codec.output_tokens(hypothesis.ids, source)
                results[i].append(
                    Generation(
                        text=self.codec.text(tokens, source),
                        score=float(hypothesis.score),
                        tokens=tokens,
                        source_tokens=source.tokens,
                        attention=np.asarray(hypothesis.attention),
                        slots=source.slots,
                    )
                )
        return results
