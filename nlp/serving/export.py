"""`s2s export`: a TensorFlow SavedModel with the project's decoder inside the graph.

TensorFlow Serving (or any TensorFlow runtime, from C++, Java or Go) runs it with no Python:
the `generate` signature holds the whole search (`nlp.decoding.loop.dynamic_decode`, a
`tf.while_loop`), the `score` signature the teacher-forced likelihood
(`nlp.model.distribution.target_log_probs`, the training loss' formula). Nothing is
re-implemented here; this module only wires the decoder and the model into signatures.

Structural options (strategy, beam width, number of samples, n-gram size) pick a different
graph in the Python decoder. A SavedModel cannot trace new graphs after export, so every
combination up to the limits in `ExportLimits` is traced once and `generate` picks one with
`tf.switch_case`; the numeric options are plain scalar inputs, as in the Python decoder.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tensorflow as tf

from nlp.decoding.draws import graph_draws
from nlp.decoding.loop import dynamic_decode
from nlp.decoding.options import DecodeOptions, option_ranges
from nlp.decoding.params import DecodeParams
from nlp.decoding.strategies import Strategy, build_strategy
from nlp.generation.bundle import Bundle, load_bundle
from nlp.generation.codec import TOKENIZER_DIR, VOCAB_FILE
from nlp.generation.decode_settings import DECODING_FILE, recommended_options
from nlp.model.distribution import target_log_probs
from nlp.text.truecase import TRUECASE_FILE
from nlp.tokenizers.specials import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from nlp.util.fsutil import atomic_directory

EXPORTED = ("greedy", "beam", "sample")  # strategies `generate` serves
ASSETS_FILE = "serving.json"  # in assets/: vocab size, limits, specials, the id recipe
# (`TextCodec.recipe`: the text <-> ids steps of this bundle's codec)


@dataclass(frozen=True)
class ExportLimits:
    """The structural choices traced into the SavedModel. Each beam size and each sample
    count is one more decoding loop in the graph (export time and size grow with their
    number); n-gram sizes only add a few ops inside the loop."""

    beam_sizes: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10)
    sample_counts: tuple[int, ...] = (1, 2, 3, 4, 5)  # n_best for strategy "sample"
    max_no_repeat_ngram: int = 4

    def covering(self, options: DecodeOptions) -> ExportLimits:
        """Limits widened to include the bundle's recommended options."""
        samples = (options.n_best,) if options.strategy == "sample" else ()
        return ExportLimits(
            beam_sizes=tuple(sorted({*self.beam_sizes, options.beam_size})),
            sample_counts=tuple(sorted({*self.sample_counts, *samples})),
            max_no_repeat_ngram=max(self.max_no_repeat_ngram, options.no_repeat_ngram),
        )


def _variants(limits: ExportLimits) -> list[tuple[str, int, Strategy]]:
    """(strategy name, width, strategy) in `generate`'s branch order; built by the decoder's
    own registry so the exported strategies are the ones the Python decoder runs, without
    its XLA clusters: TensorFlow Serving refuses a model that has them on a CPU unless
    started with `--xla_cpu_compilation_enabled`."""
    def strategy(**options: Any) -> Strategy:
        return build_strategy(DecodeOptions(**options), xla_clusters=False)

    variants = [("greedy", 1, strategy(strategy="greedy"))]
    variants += [("beam", w, strategy(strategy="beam", beam_size=w, n_best=1))
                 for w in limits.beam_sizes]
    variants += [("sample", w, strategy(strategy="sample", n_best=w))
                 for w in limits.sample_counts]
    return variants


# Options applied after decoding, with other models or the retrieval index (n-best ranking,
# retrieved candidates, whether generated ones compete, the calibrated fallback): not graph
# inputs.
RERANK_FIELDS = ("rerank", "retrieve", "mmi_lambda", "mmi_gamma", "length_bonus",
                 "mmi_per_token", "pmi_weight", "bm25_weight", "generated", "retrieved_threshold",
                 "fallback_threshold")
# Decode options that change what the model reads, not how it decodes: the client builds
# `source_ids` by the recipe (`assets/serving.json`), which says where the option's marker
# goes; the bundle's value is there as `source_defaults` (a specificity-controlled model,
# `nlp.control`).
SOURCE_FIELDS = ("specificity",)


def not_exported(options: DecodeOptions) -> dict[str, object]:
    """The settings of `options` the SavedModel cannot follow: those of `RERANK_FIELDS`
    that are not the decoder's defaults. `s2s export` names them: a chat bundle tuned to
    send retrieved replies (`generated=False`, `retrieve`, `rerank`) exports a `generate`
    that writes every reply itself, which nothing else would tell its user."""
    plain = DecodeOptions()
    return {name: getattr(options, name) for name in RERANK_FIELDS
            if getattr(options, name) != getattr(plain, name)}


def exported_options(options: DecodeOptions) -> DecodeOptions:
    """`options` as the SavedModel's `generate` takes them: a diverse beam (which the graph
    does not build, `EXPORTED`) as a plain beam of its size. Why: `assets/serving.json`'s
    `generate_defaults` are sent as they are, and a strategy the graph refuses would fail
    every request; `s2s export` warns (`unexported_strategy`)."""
    if options.strategy in EXPORTED:
        return options
    return dataclasses.replace(options, strategy="beam", beam_groups=1, diversity_penalty=0.0)


def unexported_strategy(options: DecodeOptions) -> dict[str, object]:
    """The decoding settings of `options` that `exported_options` replaces ({} if none)."""
    if options.strategy in EXPORTED:
        return {}
    return {name: getattr(options, name)
            for name in ("strategy", "beam_groups", "diversity_penalty")}


class ServingModule(tf.Module):
    """The exported object: the model's variables plus `generate` and `score`."""

    def __init__(self, model: Any, vocab_size: int, limits: ExportLimits) -> None:
        super().__init__()
        self.model = model
        self.vocab_size = vocab_size
        self.limits = limits
        self.variants = _variants(limits)

    @tf.function(input_signature=[
        tf.TensorSpec([None, None], tf.int32, name="source_ids"),
        tf.TensorSpec([], tf.string, name="strategy"),
        tf.TensorSpec([], tf.int32, name="beam_size"),
        tf.TensorSpec([], tf.int32, name="n_best"),
        tf.TensorSpec([], tf.int32, name="max_length"),
        tf.TensorSpec([], tf.float32, name="max_length_ratio"),
        tf.TensorSpec([], tf.int32, name="min_length"),
        tf.TensorSpec([], tf.float32, name="length_penalty"),
        tf.TensorSpec([], tf.float32, name="coverage_penalty"),
        tf.TensorSpec([], tf.float32, name="rare_word_weight"),
        tf.TensorSpec([], tf.int32, name="beam_groups"),
        tf.TensorSpec([], tf.float32, name="diversity_penalty"),
        tf.TensorSpec([], tf.int32, name="no_repeat_ngram"),
        tf.TensorSpec([], tf.bool, name="suppress_unk"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int32, name="top_k"),
        tf.TensorSpec([], tf.float32, name="top_p"),
        tf.TensorSpec([], tf.int64, name="seed"),
    ], autograph=False)
    def generate(
        self, source_ids: tf.Tensor, strategy: tf.Tensor, beam_size: tf.Tensor,
        n_best: tf.Tensor, max_length: tf.Tensor, max_length_ratio: tf.Tensor,
        min_length: tf.Tensor, length_penalty: tf.Tensor, coverage_penalty: tf.Tensor,
        rare_word_weight: tf.Tensor,
        beam_groups: tf.Tensor, diversity_penalty: tf.Tensor,
        no_repeat_ngram: tf.Tensor, suppress_unk: tf.Tensor, temperature: tf.Tensor,
        top_k: tf.Tensor, top_p: tf.Tensor, seed: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        """n-best outputs per source row: ids [B, n_best, max_length] (0 after the end, the
        end token 2 included when produced), scores [B, n_best], lengths [B, n_best] (end
        token counted). `seed` < 0 samples fresh numbers (the Python options' None).
        Strategy "diverse_beam" is not exported yet: a request for it fails, naming the
        exported strategies (`beam_groups` must be 1)."""
        limits = self.limits
        # The branch of each (strategy, width); -1 where nothing was exported.
        branch_of = {(name, width): i for i, (name, width, _) in enumerate(self.variants)}
        beam_table = tf.constant([branch_of.get(("beam", w), -1)
                                  for w in range(max(limits.beam_sizes, default=0) + 1)])
        sample_table = tf.constant([branch_of.get(("sample", w), -1)
                                    for w in range(max(limits.sample_counts, default=0) + 1)])

        def lookup(table: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
            inside = (width >= 0) & (width < tf.size(table))
            return tf.where(inside, tf.gather(table, tf.clip_by_value(width, 0,
                                                                      tf.size(table) - 1)), -1)

        index = tf.where(
            tf.equal(strategy, "greedy"), 0,
            tf.where(tf.equal(strategy, "beam"), lookup(beam_table, beam_size),
                     tf.where(tf.equal(strategy, "sample"), lookup(sample_table, n_best), -2)))
        ranges = option_ranges()
        checks = [
            tf.debugging.Assert(index != -2, [f"strategy must be one of {EXPORTED}"]),
            _in_range(beam_groups, 1, 1, "beam_groups"),
            tf.debugging.Assert(index >= 0, [
                f"beam_size / n_best not exported (beam sizes {limits.beam_sizes}, sample "
                f"counts {limits.sample_counts}; re-export with more):", beam_size, n_best]),
            _in_range(no_repeat_ngram, 0, limits.max_no_repeat_ngram, "no_repeat_ngram"),
            _in_range(max_length, 1, 100_000, "max_length"),
            _in_range(min_length, 0, max_length, "min_length"),
            _in_range(n_best, 1, tf.where(tf.equal(strategy, "beam"), beam_size,
                                          tf.where(tf.equal(strategy, "greedy"), 1, n_best)),
                      "n_best"),
            # the numbers the Python decoder refuses out of range (a temperature of 0 sampled
            # ids of 0 scored -inf; NaN fails every comparison)
            *(_in_range(value, *ranges[name], name) for name, value in (
                ("temperature", temperature), ("top_p", top_p), ("top_k", top_k),
                ("max_length_ratio", max_length_ratio), ("length_penalty", length_penalty),
                ("coverage_penalty", coverage_penalty), ("rare_word_weight", rare_word_weight),
                ("diversity_penalty", diversity_penalty))),
        ]
        with tf.control_dependencies(checks):
            index = tf.identity(index)
        scalars = dict(
            max_length=max_length, max_length_ratio=max_length_ratio, min_length=min_length,
            length_penalty=length_penalty, coverage_penalty=coverage_penalty,
            rare_word_weight=rare_word_weight,
            diversity_penalty=diversity_penalty,
            suppress_unk=suppress_unk, temperature=temperature, top_k=top_k, top_p=top_p,
        )

        def branch(decode_strategy: Strategy, width: int) -> Any:
            def run() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
                draws = (graph_draws(source_ids, seed, width, max_length)
                         if decode_strategy.random
                         else tf.zeros([tf.shape(source_ids)[0] * width, 0]))
                output = dynamic_decode(
                    self.model, decode_strategy, source_ids,
                    DecodeParams.from_tensors(draws, **scalars),
                    no_repeat_ngram=no_repeat_ngram,
                    max_no_repeat_ngram=limits.max_no_repeat_ngram, return_attention=False,
                    compact_rows=True,
                )
                return output.ids, output.scores, output.lengths
            return run

        branches = [branch(strategy_, width) for _, width, strategy_ in self.variants]
        ids, scores, lengths = tf.switch_case(index, branches)
        return {
            "ids": ids[:, :n_best],
            "scores": scores[:, :n_best],
            "lengths": lengths[:, :n_best],
        }

    @tf.function(input_signature=[
        tf.TensorSpec([None, None], tf.int32, name="source_ids"),
        tf.TensorSpec([None, None], tf.int32, name="target_ids"),
    ], autograph=False)
    def score(self, source_ids: tf.Tensor, target_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        """Teacher-forced log p(target + end token | source): `log_likelihood` [B] and
        `token_log_probs` [B, T+1] (0 on padding). Targets are 0-padded ids without the
        start and end tokens, extended ids allowed for copy models."""
        lengths = tf.reduce_sum(tf.cast(tf.not_equal(target_ids, PAD_ID), tf.int32), axis=1)
        batch = tf.shape(target_ids)[0]
        target_in = tf.concat([tf.fill([batch, 1], BOS_ID), target_ids], axis=1)
        padded = tf.concat([target_ids, tf.fill([batch, 1], PAD_ID)], axis=1)
        end = tf.one_hot(lengths, tf.shape(padded)[1], on_value=EOS_ID, off_value=0,
                         dtype=tf.int32)
        target_out = padded + end
        outputs = self.model.teacher_forcing(source_ids, target_in, training=False)
        token = target_log_probs(outputs, target_out, self.vocab_size, xla_clusters=False)
        token = tf.where(tf.not_equal(target_out, PAD_ID), token, 0.0)
        return {"log_likelihood": tf.reduce_sum(token, axis=1), "token_log_probs": token}


def _in_range(value: tf.Tensor, low: Any, high: Any, name: str) -> tf.Operation:
    return tf.debugging.Assert(
        (value >= low) & (value <= high),
        [f"{name} outside the exported range; value, minimum, maximum:", value, low, high],
    )


def export_bundle(bundle_dir: Path, out: Path, limits: ExportLimits = ExportLimits()) -> Path:
    """Write the SavedModel of the bundle at `bundle_dir` to `out` (atomically); returns
    `out`. The bundle's tokenizer, vocabulary, config and decoding defaults go to assets/."""
    out = Path(out).resolve()
    check_replaceable(out)
    bundle = load_bundle(bundle_dir)
    defaults = exported_options(recommended_options(bundle.decoding))
    limits = limits.covering(defaults)
    module = ServingModule(bundle.model, bundle.config.model.vocab_size, limits)
    with atomic_directory(out) as tmp:
        tf.saved_model.save(module, str(tmp), signatures={
            "generate": module.generate.get_concrete_function(),
            "score": module.score.get_concrete_function(),
        })
        _write_assets(bundle, tmp / "assets", limits, defaults)
    return Path(out)


def check_replaceable(out: Path) -> None:
    """A ValueError unless `out` is new, empty or an earlier export (its `saved_model.pb` and
    `assets/serving.json`): the export replaces the directory whole, and a model base path
    of TensorFlow Serving (its versions below it), a run directory or any other folder would
    go with it."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if (out / "saved_model.pb").is_file() and (out / "assets" / ASSETS_FILE).is_file():
        return
    raise ValueError(
        f"--out {out}: exists and is not an earlier export, and the export replaces it whole; "
        "give a new directory (for TensorFlow Serving, a new version under the model's base "
        "path, e.g. exports/news/3)")


def _write_assets(bundle: Bundle, assets: Path, limits: ExportLimits,
                  defaults: DecodeOptions) -> None:
    assets.mkdir(exist_ok=True)
    shutil.copy(bundle.path / VOCAB_FILE, assets / VOCAB_FILE)
    shutil.copy(bundle.path / "config.json", assets / "config.json")
    if (bundle.path / TOKENIZER_DIR).is_dir():
        shutil.copytree(bundle.path / TOKENIZER_DIR, assets / TOKENIZER_DIR)
    for name in (DECODING_FILE, TRUECASE_FILE):
        if (bundle.path / name).exists():
            shutil.copy(bundle.path / name, assets / name)
    request_defaults = {key: value for key, value in dataclasses.asdict(defaults).items()
                        if key not in RERANK_FIELDS + SOURCE_FIELDS}
    request_defaults["seed"] = -1 if defaults.seed is None else defaults.seed
    info = {
        "vocab_size": bundle.config.model.vocab_size,
        "copy": bundle.config.model.copy,
        "specials": {"pad": PAD_ID, "bos": BOS_ID, "eos": EOS_ID, "unk": UNK_ID},
        "limits": dataclasses.asdict(limits),
        "generate_defaults": request_defaults,
        "source_defaults": {key: getattr(defaults, key) for key in SOURCE_FIELDS},
        "recipe": bundle.codec.recipe(),
    }
    (assets / ASSETS_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n",
                                      "utf-8")


def generate_inputs() -> tuple[str, ...]:
    """The decode option names `generate` takes (its inputs besides `source_ids`)."""
    specs = ServingModule.generate.input_signature[1:]
    return tuple(spec.name for spec in specs)
