"""Test doubles for `nlp.generation.generator.Generator`: no trained model, no TensorFlow.

They live with the tests (the benchmarks import them as `tests.fakes`), not in the product.

- `ScriptedGenerator` (chat): replies derived from the last turn of the input, so a test can
  tell which message a reply belongs to, with an optional cost model (a fixed cost per call
  plus a cost per sentence, slept on the calling thread) so the bot benchmark exercises
  batching the way a real model would reward it. `fake_model` wraps it as `load_model` would.
- `FakeGenerator` (headlines): echoes the start of each article, sleeping `delay` seconds per
  batch to imitate decoding time, and with `stall_after` N never returning from batch N+1.
- Run as a script, this file is `s2s headlines` with `--model fake://?words=8&stall_after=4`
  served by a `FakeGenerator` (the tests kill a real CLI run this way: stalled, the run is
  known to have written exactly N batches however slow the machine, so there is no race).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository

from nlp.decoding import DecodeOptions
from nlp.decoding.options import XLA_BY_DEFAULT, OptionError
from nlp.generation.loading import LoadedModel
from nlp.generation.text_generator import Generation, Provenance
from nlp.util.config import DataConfig

DEFAULT_SEPARATOR = " __eot__ "
# The ranker `ConfidentGenerator` holds a calibration of (one `s2s tune-decoding` calibrates)
CALIBRATED_RANKER = "dual-encoder"
# The pool `ConfidentGenerator`'s calibration was fitted on: the default beam's n-best
FITTED_POOL = ("beam", 5)
SCHEME = "fake://"


@dataclass(frozen=True)
class CostModel:
    """Seconds one `generate` call takes: per_call + per_item * batch size."""

    per_call: float = 0.0
    per_item: float = 0.0

    def seconds(self, items: int) -> float:
        return self.per_call + self.per_item * items


def reply_for(message: str) -> str:
    """The top candidate for `message`: unique per message and sharing none of its words."""
    return "reply-" + hashlib.sha1(message.encode()).hexdigest()[:10]


def default_candidates(message: str) -> list[str]:
    """Five candidates, best first: a unique reply, two generic lines, an echo, a short one."""
    return [reply_for(message), "i see .", "tell me more .", message, "ok ."]


def _attention(rows: int, cols: int) -> np.ndarray:
    """A soft diagonal, each row summing to 1, like a monotonic alignment."""
    positions = np.arange(cols)[None, :] - np.linspace(0, cols - 1, rows)[:, None]
    weights = np.exp(-np.abs(positions))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass
class ScriptedGenerator:
    """Candidates come from `candidates(last_turn)`; scores fall by 0.5 per rank from -1."""

    candidates: Callable[[str], list[str]] = default_candidates
    cost: CostModel = field(default_factory=CostModel)
    separator: str = DEFAULT_SEPARATOR
    calls: list[tuple[list[str], DecodeOptions]] = field(default_factory=list)
    seeds: list[list[int | None]] = field(default_factory=list)  # per call, per text
    attended: list[str] = field(default_factory=list)  # retrieved replies `with_attention` drew
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def generate(
        self,
        texts: Sequence[str],
        options: DecodeOptions,
        seeds: Sequence[int | None] | None = None,
    ) -> list[list[Generation]]:
        with self._lock:  # like a real model: one call at a time
            self.calls.append((list(texts), options))
            self.seeds.append(list(seeds) if seeds is not None else [None] * len(texts))
            delay = self.cost.seconds(len(texts))
            if delay:
                time.sleep(delay)
            return [self._nbest(text, options.n_best) for text in texts]

    def with_attention(self, output: Generation) -> Generation:
        """A retrieved reply gets the soft diagonal a decoder's output has (recorded in
        `attended`); any other output is returned as it is, as the real one does."""
        if not output.unwritten:
            return output
        self.attended.append(output.text)
        rows, cols = len(output.tokens), len(output.source_tokens)
        return dataclasses.replace(output, attention=_attention(rows, cols))

    def check(self, options: DecodeOptions) -> None:
        """Every option serves (nothing calibrated to hold for some alone)."""

    def _nbest(self, text: str, n_best: int) -> list[Generation]:
        last = text.split(self.separator.strip())[-1].strip()
        source = text.split()
        results = []
        for rank, reply in enumerate(self.candidates(last)[:n_best]):
            tokens = reply.split()
            results.append(
                Generation(
                    reply, -1.0 - 0.5 * rank, tokens, source, _attention(len(tokens), len(source))
                )
            )
        return results


class ProvenanceGenerator(ScriptedGenerator):
    """The scripted candidates, each marked as a retrieval system or a refining model marks
    them: the best is a training reply (retrieved) or written over one (refined)."""

    def __init__(self, provenance: Provenance) -> None:
        super().__init__()
        self.provenance = provenance

    def _nbest(self, text: str, n_best: int) -> list[Generation]:
        return [dataclasses.replace(g, provenance=self.provenance, pair="chat.jsonl:42")
                for g in super()._nbest(text, n_best)]


class ConfidentGenerator(ScriptedGenerator):
    """The scripted candidates as a bundle with a calibration of `ranker`'s score alone
    gives them (`Generation.confidence`): ranked by `ranker`, `confidence` for the best,
    falling by `step` per rank; ranked otherwise, NaN (nothing calibrated it), and a
    `fallback_threshold` refused, as `Generator.generate` refuses it."""

    def __init__(self, confidence: float, step: float = 0.0,
                 ranker: str = CALIBRATED_RANKER) -> None:
        super().__init__()
        self.confidence = confidence
        self.step = step
        self.ranker = ranker

    def generate(
        self,
        texts: Sequence[str],
        options: DecodeOptions,
        seeds: Sequence[int | None] | None = None,
    ) -> list[list[Generation]]:
        self.check(options)
        calibrated = options.rerank == self.ranker
        return [[dataclasses.replace(g, confidence=self.confidence - self.step * rank
                                     if calibrated else math.nan)
                 for rank, g in enumerate(n_best)]
                for n_best in super().generate(texts, options, seeds)]


    def check(self, options: DecodeOptions) -> None:
        """As `Generator.check`: a fallback threshold needs `ranker`'s calibration, fitted on
        the pools of `FITTED_POOL` (beam search's n-best of `RERANK_CANDIDATES`)."""
        if not options.fallback_threshold:
            return
        if options.rerank != self.ranker:
            raise OptionError(f"fallback_threshold needs rerank={options.rerank}'s score "
                              f"calibrated, and this fake calibrates {self.ranker}'s alone")
        pool = (options.strategy, options.n_best)
        if pool != FITTED_POOL:
            raise OptionError(f"fallback_threshold: the calibration holds for strategy, n_best "
                              f"{FITTED_POOL}, and these are {pool}")


class OverlapProbe:
    """Wraps a generator and records the most `generate` calls ever in progress at once: the
    witness of a thread-safety test. Each call holds `hold` seconds first, so calls that
    could overlap do."""

    def __init__(self, inner: ScriptedGenerator | FakeGenerator, hold: float = 0.005) -> None:
        self.inner = inner
        self.hold = hold
        self.active = 0
        self.most = 0
        self.calls = 0
        self._count = threading.Lock()

    def generate(
        self,
        texts: Sequence[str],
        options: DecodeOptions,
        seeds: Sequence[int | None] | None = None,
    ) -> list[list[Generation]]:
        with self._count:
            self.active += 1
            self.calls += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(self.hold)
            return self.inner.generate(texts, options, seeds)
        finally:
            with self._count:
                self.active -= 1

    def with_attention(self, output: Generation) -> Generation:
        return self.inner.with_attention(output)

    def check(self, options: DecodeOptions) -> None:
        self.inner.check(options)


def fake_model(
    generator: ScriptedGenerator | None = None, *, context_turns: int = 0
) -> LoadedModel:
    """A `LoadedModel` around a scripted generator, as `load_model` would return a real one."""
    generator = generator or ScriptedGenerator()
    data = DataConfig(context_turns=context_turns, turn_separator=generator.separator)
    return LoadedModel(generator, data)


class FakeGenerator:
    """Echoes the start of each article; n-best variants are ever shorter prefixes."""

    def __init__(self, words: int = 8, delay: float = 0.0, stall_after: int | None = None) -> None:
        self.words = words
        self.delay = delay
        self.stall_after = stall_after
        self.calls = 0

    @classmethod
    def from_uri(cls, uri: str) -> FakeGenerator:
        query = parse_qs(urlsplit(uri).query)
        words = int(query.get("words", ["8"])[0])
        delay = float(query.get("delay", ["0"])[0])
        stall = query.get("stall_after")
        return cls(words=words, delay=delay, stall_after=int(stall[0]) if stall else None)

    def generate(
        self,
        texts: Sequence[str],
        options: DecodeOptions,
        seeds: Sequence[int | None] | None = None,
    ) -> list[list[Generation]]:
        if self.stall_after is not None and self.calls >= self.stall_after:
            threading.Event().wait()  # until the test kills the process
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

    def with_attention(self, output: Generation) -> Generation:
        return output  # headlines: written, with the attention they have

    def check(self, options: DecodeOptions) -> None:
        """Every option serves."""

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


def load_fake(model: str, *, jit_compile: bool = XLA_BY_DEFAULT) -> LoadedModel:
    """`nlp.generation.loading.load_model` for ``fake://`` URIs (recommends nothing)."""
    if not model.startswith(SCHEME):
        raise ValueError(f"{model}: this helper serves only {SCHEME} models")
    return LoadedModel(FakeGenerator.from_uri(model), DataConfig(task="headline"))


def main(argv: list[str] | None = None) -> int:
    """`s2s headlines` with the fake generator: ``fake_generators.py --model fake:// ...``."""
    import argparse

    from nlp.headlines import command

    parser = argparse.ArgumentParser(description=command.__doc__)
    command.add_arguments(parser)
    return command.run_with_loader(parser.parse_args(argv), load_fake)


if __name__ == "__main__":
    sys.exit(main())


class MixedGenerator(ScriptedGenerator):
    """A retrieved reply (the scripted best, with `fit`, `retrieved`'s text) ranked first,
    then the model's own generic reply: what a chat bundle with an index offers."""

    def __init__(self, fit: float) -> None:
        super().__init__()
        self.fit = fit

    def _nbest(self, text: str, n_best: int) -> list[Generation]:
        best = super()._nbest(text, 1)[0]
        retrieved = dataclasses.replace(best, text=retrieved_for(text), provenance="retrieved",
                                        pair="chat.jsonl:7", post="a post", fit=self.fit)
        own = dataclasses.replace(best, text="i don't know .", provenance="generated")
        return [retrieved, own]


def retrieved_for(message: str) -> str:
    """The retrieved reply `MixedGenerator` offers for `message`."""
    return "retrieved-" + reply_for(message)
