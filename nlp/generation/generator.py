"""Text in, text out: the one path from a trained bundle through the shared decoder.

The headline script, `s2s evaluate`, the chat responder (and through it the Telegram bot)
all call `Generator.generate`; none of them touches TensorFlow or the decoder directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from nlp.decoding import DecodeOptions, Decoder, Hypothesis
from nlp.decoding.options import POST_RANKERS, SENTENCE_ENCODER, XLA_BY_DEFAULT
from nlp.generation.bundle import COMPANION_KINDS, Bundle, BundleFiles, load_bundle
from nlp.generation.candidates import Candidates
from nlp.generation.codec import Source
from nlp.generation.confidence import require_calibration
from nlp.generation.rankers import Companion, Rankers
from nlp.generation.retrieved_fit import decides_before_decoding, fitting, gate_first
from nlp.generation.stage_clock import StageClock
from nlp.generation.text_generator import Generation
from nlp.tokenizers.specials import BOS_ID

__all__ = ["Generation", "Generator"]


class Generator:
    """Generates n-best outputs for a batch of texts with one model bundle.

    `options.retrieve` adds the replies of the nearest training posts to each n-best list,
    and `options.rerank` scores every candidate (`nlp.generation.rankers`: likelihood,
    MMI with the companions, an LM and/or a reverse bundle, or the dual encoder) and returns
    the list sorted by that score, each candidate with its calibrated `confidence` where the
    ranker has a calibration that holds for the options (`nlp.generation.confidence`), those
    the retrieved-or-generated gate lets through first (`gate_first`), so every list's first
    candidate is the one a single output sends. A
    retrieve-and-refine model reads each text with its nearest training post's reply
    (`data.retrieve_refine`). Without `options.generated` a plain model decodes nothing: the
    retrieved replies are the only candidates.
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
        self.clock = StageClock()  # where generating's time goes (the server's /metrics)
        self.candidates = Candidates(bundle, self.clock)
        self.rankers = Rankers(self.candidates, self.companions)
        self._teacher_attention: Any = None  # compiled on first use (`with_attention`)

    @classmethod
    def from_bundle(
        cls,
        directory: Path | BundleFiles,
        *,
        jit_compile: bool = XLA_BY_DEFAULT,
        companions: Sequence[Path] = (),
    ) -> Generator:
        """The generator of the bundle at `directory` (or already verified by `open_bundle`).
        Commands and applications load through `nlp.generation.loading.load_model`, which
        calls this. `jit_compile`: decode with XLA (see `nlp.decoding.options.XLA_BY_DEFAULT`).
        `companions` are LM / reverse bundles for MMI re-ranking; the companions the bundle names
        (`s2s companion`) are loaded too, unless one of the same kind is given here."""
        from nlp.generation.mmi import CompanionScorer

        bundle = load_bundle(directory)
        scorers = [CompanionScorer(path) for path in companions]
        for path, scorer in zip(companions, scorers, strict=True):
            if scorer.kind not in COMPANION_KINDS:  # else every message failed, unexplained
                raise ValueError(f"{path}: a {scorer.kind} model, not a companion: MMI reads "
                                 f"an {' or a '.join(COMPANION_KINDS)} model (s2s train --task "
                                 "lm, or --reverse)")
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
        `seeds` (sampling) gives each text its own seed in place of `options.seed`. Under
        the retrieved-or-generated gate a text with a fitting retrieved reply gets no reply
        of the model's (`pools`' `only_competing`). A fallback threshold needs the ranker's
        calibration to hold for `options` (`check`)."""
        self.check(options)
        inputs, results = self.pools(texts, options, seeds, only_competing=True)
        if options.rerank != "none" or options.retrieve or options.fallback_threshold:
            with self.clock.stage("rank"):
                results = self.rankers.rank(texts, inputs, results, options)
        return [gate_first(n_best, options.retrieved_threshold) for n_best in results]

    def check(self, options: DecodeOptions) -> None:
        """Raise OptionError where this bundle cannot serve `options`: a fallback threshold
        whose ranker's calibration does not hold for them
        (`nlp.generation.confidence.require_calibration`), a ranker by retrieved posts without
        an index that keeps them, the sentence encoder's package missing (`MissingPackage`)."""
        if options.fallback_threshold:
            require_calibration(self.candidates.bundle, options, self.candidates.decodes(options))
        if options.rerank in POST_RANKERS:
            self.candidates.check_retrieval(options.rerank)
        if options.rerank == SENTENCE_ENCODER:
            self.candidates.sentence_encoder.ensure_available()

    def pools(
        self,
        texts: Sequence[str],
        options: DecodeOptions,
        seeds: Sequence[int | None] | None = None,
        *,
        only_competing: bool = False,
    ) -> tuple[list[str], list[list[Generation]]]:
        """What the chat model reads for each text (`Candidates.model_inputs`) and the
        candidates `generate` ranks for it, unranked: the decoder's n-best list and the
        retrieved replies (none for a text without tokens). The tuner calibrates the rankers
        on these pools (`nlp.tuning.calibration`), every candidate of every text.

        `only_competing`: where the gate decides before the model's replies are needed
        (`nlp.generation.retrieved_fit.decides_before_decoding`), the decoder writes only for
        the texts with no fitting retrieved reply (`fitting`). Why: elsewhere the model's
        replies never compete (`competing`), and decoding is most of a message's work, so a
        bot whose gate sends retrieved replies to most messages would otherwise spend most
        of its time writing replies nobody reads."""
        inputs, drafts = self.candidates.model_inputs(texts, options.specificity)
        with self.clock.stage("tokenize"):
            sources = [self.codec.source(text) for text in inputs]
        retrieved: list[list[Generation]] = [[] for _ in texts]
        searched = [i for i, source in enumerate(sources) if source.ids]
        if options.retrieve and searched:
            with self.clock.stage("retrieve"):
                found = self.candidates.retrieve([texts[i] for i in searched], options.retrieve)
                for i, hits in zip(searched, found, strict=True):
                    retrieved[i] = self.candidates.retrieved(texts[i], hits, sources[i])
        decided = only_competing and decides_before_decoding(options)
        threshold = options.retrieved_threshold
        wanted = [bool(source.ids) and not (decided and fitting(found, threshold))
                  for source, found in zip(sources, retrieved, strict=True)]
        results = self._decoded(sources, drafts, wanted, options, seeds)
        if options.pmi_weight > 0:
            with self.clock.stage("rank"):
                results = self.candidates.by_pmi(inputs, results, options.pmi_weight)
        return inputs, [own + found for own, found in zip(results, retrieved, strict=True)]

    def with_attention(self, output: Generation) -> Generation:
        """`output` with the attention to draw (`TextGenerator.with_attention`): for a
        retrieved reply, the model's attention over its input (`source_tokens`) at each of
        the reply's tokens while it is fed them teacher-forced, as `Candidates.forward`
        scores it; any other output as it is."""
        if not output.unwritten or not output.tokens or not output.source_tokens:
            return output
        source, target = self.codec.token_ids((output.source_tokens, output.tokens))
        if self._teacher_attention is None:
            self._teacher_attention = tf.function(
                lambda source, target_in: self.bundle.model.teacher_forcing(
                    source, target_in, training=False).attention,
                input_signature=[tf.TensorSpec([None, None], tf.int32)] * 2,
            )
        weights = self._teacher_attention(
            tf.constant([source], tf.int32), tf.constant([[BOS_ID, *target[:-1]]], tf.int32))
        # a row per reply token (the end token's, and those past a cut target, left out)
        rows = min(len(output.tokens), len(target))
        attention = np.asarray(tf.cast(weights[0], tf.float32))[:rows]
        return dataclasses.replace(output, attention=attention)

    def _decoded(
        self,
        sources: Sequence[Source],
        drafts: Sequence[Any],
        wanted: Sequence[bool],
        options: DecodeOptions,
        seeds: Sequence[int | None] | None,
    ) -> list[list[Generation]]:
        """The decoder's n-best lists for the `wanted` inputs (sources with tokens); empty
        for the others, and for every input of a plain model when generated replies are off."""
        usable = [i for i, want in enumerate(wanted) if want]
        results: list[list[Generation]] = [[] for _ in sources]
        if not usable or not self.candidates.decodes(options):
            return results  # not clocked: the "decode" stage's calls count batches decoded
        with self.clock.stage("decode"):
            hypotheses = self.decoder.decode(
                [sources[i].ids for i in usable],
                options,
                seeds=None if seeds is None else [seeds[i] for i in usable],
            )
            for i, n_best in zip(usable, hypotheses, strict=True):
                results[i] = [self._written(h, sources[i], drafts[i]) for h in n_best]
        return results

    def _written(self, hypothesis: Hypothesis, source: Source, draft: Any) -> Generation:
        """One of the decoder's hypotheses for `source` as a candidate (a retrieve-and-refine
        model's: "refined", naming its draft's training pair)."""
        tokens = self.codec.output_tokens(hypothesis.ids, source)
        refines = self.bundle.config.data.retrieve_refine
        return Generation(
            text=self.codec.text(tokens, source),
            score=float(hypothesis.score),
            tokens=tokens,
            source_tokens=source.tokens,
            attention=np.asarray(hypothesis.attention),
            slots=source.slots,
            provenance="refined" if refines else "generated",
            pair=draft.pair if draft else "",
        )


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
