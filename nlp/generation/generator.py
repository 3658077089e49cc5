"""Text in, text out: the one path from a trained bundle through the shared decoder.

The headline script, `s2s evaluate`, the chat responder (and through it the Telegram bot)
all call `Generator.generate`; none of them touches TensorFlow or the decoder directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions, Decoder
from nlp.decoding.options import XLA_BY_DEFAULT
from nlp.generation.bundle import Bundle, load_bundle
from nlp.generation.mmi import COMPANION_KIND, mmi_score
from nlp.generation.text_generator import Generation

__all__ = ["Generation", "Generator"]


class Companion(Protocol):
    """What MMI re-ranking needs (`nlp.generation.mmi.CompanionScorer`, or a scripted one in
    tests)."""

    kind: str  # "lm" | "reverse"

    def token_log_probs(self, pairs: Sequence[Pair]) -> list[np.ndarray]: ...


class Generator:
    """Generates n-best outputs for a batch of texts with one model bundle.

    With companions (an LM and/or a reverse bundle), `options.rerank` re-scores each n-best
    list by MMI (`nlp.generation.mmi`) and returns it sorted by that score.
    """

    def __init__(
        self,
        bundle: Bundle,
        *,
        jit_compile: bool = XLA_BY_DEFAULT,
        companions: Sequence[Companion] = (),
    ) -> None:
        self.bundle = bundle
        self.codec = bundle.codec
        self.decoder = Decoder(bundle.model, jit_compile=jit_compile)
        self.companions = {companion.kind: companion for companion in companions}

    @classmethod
    def from_bundle(
        cls,
        directory: Path,
        *,
        jit_compile: bool = XLA_BY_DEFAULT,
        companions: Sequence[Path] = (),
    ) -> Generator:
        """`jit_compile`: decode with XLA (see `nlp.decoding.options.XLA_BY_DEFAULT`).
        `companions` are LM / reverse bundles for MMI re-ranking; the companions the bundle names
        (`s2s companion`) are loaded too, unless one of the same kind is given here."""
        from nlp.generation.mmi import CompanionScorer

        bundle = load_bundle(directory)
        scorers = [CompanionScorer(path) for path in companions]
        given = {scorer.kind for scorer in scorers}
        for kind, path in bundle.companions.items():
            if kind not in given:
                scorer = CompanionScorer(path)
                if scorer.kind != kind:
                    raise ValueError(
                        f"{bundle.path}: names {path} as its {kind} companion, but that "
                        f"bundle is a {scorer.kind} model"
                    )
                scorers.append(scorer)
        return cls(bundle, jit_compile=jit_compile, companions=scorers)

    @property
    def config(self):  # type: ignore[no-untyped-def]
        """The bundle's ExperimentConfig (data.context_turns etc. for the chat responder)."""
        return self.bundle.config

    def generate(
        self,
        texts: Sequence[str],
        options: DecodeOptions,
        seeds: Sequence[int | None] | None = None,
    ) -> list[list[Generation]]:
        """n-best generations per text; a text with no tokens at all gets an empty list.
        `seeds` (sampling) gives each text its own seed in place of `options.seed`."""
        sources = [self.codec.source(text) for text in texts]
        usable = [i for i, source in enumerate(sources) if source.ids]
        results: list[list[Generation]] = [[] for _ in texts]
        if not usable:
            return results
        hypotheses = self.decoder.decode(
            [sources[i].ids for i in usable],
            options,
            seeds=None if seeds is None else [seeds[i] for i in usable],
        )
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
        if options.rerank != "none":
            results = self._rerank(texts, results, options)
        return results

    def _rerank(
        self, texts: Sequence[str], results: list[list[Generation]], options: DecodeOptions
    ) -> list[list[Generation]]:
        """Every candidate of every input re-scored by MMI in one companion call."""
        kind = COMPANION_KIND[options.rerank]
        companion = self.companions.get(kind)
        if companion is None:
            raise ValueError(
                f"rerank={options.rerank} needs a companion {kind} model; none was loaded "
                f"(train one with `s2s train {'--task lm' if kind == 'lm' else '--reverse'}`)"
            )
        pairs = [Pair(text, g.text) for text, n_best in zip(texts, results, strict=True)
                 for g in n_best]
        if not pairs:
            return results
        scores = iter(companion.token_log_probs(pairs))
        return [
            sorted(
                (
                    dataclasses.replace(
                        g, score=mmi_score(g.score, next(scores), len(g.tokens) + 1, options)
                    )
                    for g in n_best
                ),
                key=lambda g: -g.score,
            )
            for n_best in results
        ]


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def generate_all(
    generator: Generator, sources: Sequence[str], options: DecodeOptions, batch_size: int
) -> list[str]:
    """Best output for every source ("" where the source has no tokens)."""
    outputs: list[str] = []
    for batch in _batches(sources, batch_size):
        outputs.extend(
            n_best[0].text if n_best else "" for n_best in generator.generate(batch, options)
        )
    return outputs
