"""`s2s export`: the SavedModel, loaded by plain TensorFlow in a process that does not import
the project, decodes exactly like `Generator.generate` (greedy, beam; the default model, a copy
model, the basic, feedback and peek decoder modes, and the Transformer)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # trains models, loads the export in a process

# Imports only TensorFlow; reads [[export, requests (ids + options)], ...] and prints each
# request's signature outputs, or the error a refused one raised. One process serves every
# export a test makes: a process that imports TensorFlow takes seconds to start.
LOADER = """
import json, sys
import tensorflow as tf
assert not any(name == "nlp" or name.startswith("nlp.") for name in sys.modules)
results = []
for path, requests in json.loads(sys.stdin.read()):
    served = tf.saved_model.load(path)
    dtypes = {spec.name: spec.dtype
              for spec in served.signatures["generate"].structured_input_signature[1].values()}
    answers = []
    for request in requests:
        ids = tf.constant(request.pop("source_ids"), tf.int32)
        targets = tf.constant(request.pop("target_ids"), tf.int32)
        options = {k: tf.constant(v, dtypes[k]) for k, v in request.items()}
        try:
            out = served.signatures["generate"](source_ids=ids, **options)
        except tf.errors.InvalidArgumentError as error:
            answers.append({"error": error.message})
            continue
        scored = served.signatures["score"](source_ids=ids, target_ids=targets)
        answers.append({k: v.numpy().tolist() for k, v in {**out, **scored}.items()})
    results.append(answers)
print(json.dumps(results))
"""

TEXTS = [
    "how are you today",
    "where is the station",
    "the weather is nice and zork is here",
    "i like green tea",
    "qwxy plumbus tell me about yourself",
]


VARIANTS = {  # model settings of each exported bundle
    "plain": {},
    "copy": {"model.copy": "true"},
    # the tutorials' decoder modes ("plain" is the attention mode)
    "basic": {"model.attention": "none", "model.input_feeding": "false"},
    "feedback": {"model.attention": "none", "model.input_feeding": "true"},
    "peek": {"model.attention": "none", "model.input_feeding": "false", "model.peek": "true"},
    # Keras' LSTM layers (the GPU's recurrence) in the encoder and decoder, exported
    "keras": {"model.recurrence": "keras", "model.input_feeding": "false"},
    # the Transformer in place of the recurrent encoder and decoder (its keys and values the
    # decoding state)
    "transformer": {"model.architecture": "transformer", "model.input_feeding": "false",
                    "model.heads": "2"},
}


def _bundle(directory: Path, settings: dict[str, str]) -> Path:
    """A random-weight bundle (decoding equality needs no training)."""
    import keras

    from nlp.corpus.records import Pair
    from nlp.decoding import DecodeOptions
    from nlp.generation.bundle import save_bundle
    from nlp.generation.codec import TextCodec
    from nlp.generation.decode_settings import DecodeSettings
    from nlp.model import Seq2Seq
    from nlp.util.config import ExperimentConfig
    from tests.conftest import tiny_overrides

    config = ExperimentConfig().with_overrides(
        tiny_overrides(**{**settings, "vocab.min_freq": 2})
    )
    words = ["how", "are", "you", "today", "where", "is", "the", "station",
             "weather", "nice", "i", "like", "green", "tea", "me"]
    pairs = [Pair(" ".join(words[i % 7: i % 7 + 4]), " ".join(words[i % 5: i % 5 + 3]))
             for i in range(40)]
    codec = TextCodec.fit(config, pairs)
    config = replace(config, model=replace(config.model, vocab_size=len(codec.vocab)))
    keras.utils.set_random_seed(3)
    model = Seq2Seq(config.model)
    # Defaults inside the test's export limits, which `export_bundle` widens to cover them.
    defaults = DecodeSettings(DecodeOptions(beam_size=3, no_repeat_ngram=2), "test")
    save_bundle(directory, config, codec, model, {}, defaults)
    return directory


def _serve(jobs: list[tuple[Path, list[dict]]]) -> list[list[dict]]:
    """Each export's answers to its requests, from one process that imports only TensorFlow."""
    result = subprocess.run(
        [sys.executable, "-c", LOADER], input=json.dumps([[str(e), r] for e, r in jobs]),
        capture_output=True, text=True, timeout=600, cwd="/",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


CASES = [  # what each variant's export decodes, and the generator beside it
    {"strategy": "greedy", "max_length": 12},
    {"strategy": "beam", "beam_size": 3, "n_best": 2, "max_length": 10, "length_penalty": 0.6,
     "no_repeat_ngram": 2, "min_length": 2},
    {"strategy": "beam", "beam_size": 3, "max_length": 10, "rare_word_weight": 3.0},
]


def _exported(directory: Path, variant: str) -> tuple[Path, list[dict], list[list]]:
    """A variant's bundle exported, the requests for `CASES` and the decoder's hypotheses
    for them (checked against `Generator.generate` on the way)."""
    from nlp.decoding import DecodeOptions
    from nlp.generation.generator import Generator
    from nlp.serving.export import (
        RERANK_FIELDS,
        SOURCE_FIELDS,
        ExportLimits,
        export_bundle,
        generate_inputs,
    )

    bundle = _bundle(directory / "bundle", VARIANTS[variant])
    export = export_bundle(bundle, directory / "export",
                           ExportLimits(beam_sizes=(3,), sample_counts=(), max_no_repeat_ngram=2))
    assets = json.loads((export / "assets" / "serving.json").read_text())
    vocab_lines = (export / "assets" / "vocab.txt").read_text("utf-8").splitlines()
    assert assets["vocab_size"] == len(vocab_lines)
    # Every decoder option is an input (re-ranking happens after decoding, with other models;
    # what the model reads is the client's, by the recipe).
    assert set(DecodeOptions.__dataclass_fields__) - set(generate_inputs()) == {
        *RERANK_FIELDS, *SOURCE_FIELDS}
    assert assets["source_defaults"] == {"specificity": DecodeOptions().specificity}
    generator = Generator.from_bundle(bundle)
    sources = [generator.codec.source(text) for text in TEXTS]
    width = max(len(s.ids) for s in sources)
    source_ids = [s.ids + [0] * (width - len(s.ids)) for s in sources]
    if variant == "copy":  # the test means nothing unless some sources hold extended ids
        assert max(max(row) for row in source_ids) >= assets["vocab_size"]
    requests, expected = [], []
    for case in CASES:
        options = DecodeOptions(**case)
        # with attention, as `generate` decodes: the two share one traced decoder
        hypotheses = generator.decoder.decode([s.ids for s in sources], options)
        generations = generator.generate(TEXTS, options)
        for n_best, generated in zip(hypotheses, generations, strict=True):
            assert [g.score for g in generated] == [h.score for h in n_best], variant
        served_options = {name: getattr(options, name) for name in generate_inputs()}
        requests.append({**served_options, "seed": -1, "source_ids": source_ids,
                         "target_ids": [h[0].ids + [0] * (12 - len(h[0].ids))
                                        for h in hypotheses]})
        expected.append(hypotheses)
    return export, requests, expected


def _group(settings: dict[str, str]) -> str:
    """A variant's group: each group's exports are served in a process of their own, so that
    the two halves run side by side (one test of all seven took over two minutes, and
    whichever worker drew it last left the other idle that long)."""
    return "tutorial-modes" if settings.get("model.attention") == "none" else "attention"


@pytest.mark.parametrize("group", sorted({_group(s) for s in VARIANTS.values()}))
def test_saved_models_decode_like_the_generator(tmp_path: Path, group: str) -> None:
    """Each variant's export, a group's served in one plain TensorFlow process."""
    from nlp.decoding import DecodeOptions

    variants = sorted(v for v, settings in VARIANTS.items() if _group(settings) == group)
    made = [_exported(tmp_path / variant, variant) for variant in variants]
    answers = _serve([(export, requests) for export, requests, _ in made])
    for variant, (_, _, expected), served_cases in zip(variants, made, answers, strict=True):
        for case, hypotheses, served in zip(CASES, expected, served_cases, strict=True):
            options = DecodeOptions(**case)
            where = (variant, options.strategy)
            ids, lengths = np.array(served["ids"]), np.array(served["lengths"])
            assert ids.shape[:2] == (len(TEXTS), options.n_best), where
            for row, n_best in enumerate(hypotheses):
                for rank, hypothesis in enumerate(n_best):
                    tokens = ids[row, rank, : lengths[row, rank]].tolist()
                    if tokens and tokens[-1] == 2:
                        tokens.pop()
                    assert tokens == hypothesis.ids, (*where, row, rank)
                    assert served["scores"][row][rank] == pytest.approx(
                        hypothesis.score, abs=1e-4), (*where, row, rank)
                if not options.length_penalty and not options.rare_word_weight:
                    # a plain sum of log-probabilities: the likelihood
                    # of the tokens produced (end token included when produced), from `score`
                    produced = served["token_log_probs"][row][: lengths[row, 0]]
                    assert sum(produced) == pytest.approx(n_best[0].score, abs=1e-3), where


def test_the_export_has_no_xla_cluster_samples_and_refuses_what_the_decoder_refuses(
    tmp_path: Path,
) -> None:
    """TensorFlow Serving refuses XLA clusters on a CPU unless told otherwise, so the export
    keeps the sampler's pick and the scoring's log softmax unfused (the Python decoder and
    the training loss fuse them). A temperature of 0 (a common client's "deterministic")
    sampled ids of 0 scored -inf, and a NaN penalty gave a NaN score: refused now, naming
    the option."""
    from tensorflow.core.protobuf import saved_model_pb2

    from nlp.decoding import DecodeOptions
    from nlp.generation.generator import Generator
    from nlp.serving.export import ExportLimits, export_bundle, generate_inputs

    bundle = _bundle(tmp_path / "bundle", {})
    limits = ExportLimits(beam_sizes=(3,), sample_counts=(1, 2), max_no_repeat_ngram=2)
    export = export_bundle(bundle, tmp_path / "export", limits)
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((export / "saved_model.pb").read_bytes())
    functions = [f for graph in saved.meta_graphs for f in graph.graph_def.library.function]
    assert functions
    assert not [f.signature.name for f in functions if f.attr["_XlaMustCompile"].b]

    generator = Generator.from_bundle(bundle)
    sources = [generator.codec.source(text).ids for text in TEXTS]
    width = max(len(ids) for ids in sources)
    options = DecodeOptions(strategy="sample", n_best=2, top_p=0.8, temperature=1.5,
                            max_length=8, seed=11)
    request = {name: getattr(options, name) for name in generate_inputs()}
    request.update(source_ids=[ids + [0] * (width - len(ids)) for ids in sources],
                   target_ids=[[3] * 4 for _ in sources])
    single = {name: getattr(DecodeOptions(strategy="sample", max_length=8), name)
              for name in generate_inputs()}
    refused = [("temperature", 0.0), ("length_penalty", float("nan"))]
    [[first, again, *errors]] = _serve([(export, [
        dict(request), dict(request),
        *({**single, name: value, "seed": 1, "source_ids": [sources[0]], "target_ids": [[4, 5]]}
          for name, value in refused)])])
    assert np.array(first["ids"]).shape[:2] == (len(TEXTS), 2)
    assert np.array(first["lengths"]).min() >= 1
    assert first["ids"] == again["ids"]  # seeded
    for (name, _), error in zip(refused, errors, strict=True):
        assert f"{name} outside the exported range" in error["error"]

    # an earlier export may be replaced; anything else that holds files is refused untouched
    from nlp.serving.export import check_replaceable

    check_replaceable(export)
    base = tmp_path / "models" / "news"
    (base / "1").mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_bytes(b"a version TF Serving serves")
    with pytest.raises(ValueError, match=r"not an earlier export.*new version"):
        export_bundle(bundle, base)
    assert (base / "1" / "saved_model.pb").read_bytes() == b"a version TF Serving serves"


def test_exporting_a_retrieving_bundle_warns_that_the_savedmodel_generates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chat bundle tuned to send retrieved replies only: the SavedModel cannot retrieve or
    rank, and the command says which settings it drops; a plain bundle exports silently.
    (The SavedModel itself is written by a stand-in: the other tests export for real.)"""
    from nlp.decoding import DecodeOptions
    from nlp.generation.bundle import store_decoding
    from nlp.generation.decode_settings import DecodeSettings
    from nlp.serving import export
    from s2s.cli import main

    exported: list[Path] = []
    monkeypatch.setattr(export, "export_bundle",
                        lambda bundle, out, limits: exported.append(bundle) or out)
    plain = _bundle(tmp_path / "plain", {})
    retrieving = store_decoding(_bundle(tmp_path / "retrieving", {}), DecodeSettings(
        DecodeOptions(retrieve=10, generated=False, rerank="retrieval"), "tuned"))
    assert main(["export", "--model", str(plain), "--out", str(tmp_path / "e1")]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["export", "--model", str(retrieving), "--out", str(tmp_path / "e2")]) == 0
    warning = capsys.readouterr().err
    assert ("s2s export: warning: the bundle's rerank=retrieval, retrieve=10, generated=False "
            "are not exported") in warning
    assert "the export's are all generated" in warning
    assert exported == [plain, retrieving]

    # a diverse beam (the graph has none): its generate_defaults asked for what the graph
    # refuses, failing every request sent with them; now a plain beam of its size, and said
    from nlp.serving.export import exported_options

    diverse = DecodeOptions(strategy="diverse_beam", beam_size=6, beam_groups=3,
                            diversity_penalty=0.5, n_best=3)
    assert exported_options(diverse) == DecodeOptions(strategy="beam", beam_size=6, n_best=3)
    assert exported_options(DecodeOptions()) == DecodeOptions()
    grouped = store_decoding(_bundle(tmp_path / "diverse", {}), DecodeSettings(diverse, "tuned"))
    assert main(["export", "--model", str(grouped), "--out", str(tmp_path / "e3")]) == 0
    assert ("the bundle's strategy=diverse_beam, beam_groups=3, diversity_penalty=0.5 are not "
            "exported") in capsys.readouterr().err
