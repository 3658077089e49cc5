"""train.precision: which dtypes training computes in, and that a model trained with bfloat16
products is the same model (float32 weights, float32 decoding, gradients close to float32's)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlp.generation.bundle import load_bundle
from nlp.model import Seq2Seq
from nlp.model.losses import masked_mean_loss
from nlp.training.corpus_io import CorpusSpec
from nlp.training.precision import (
    BFLOAT16_PRODUCTS,
    FLOAT16,
    FLOAT32,
    PrecisionCache,
    ProductSizes,
    Race,
    cpu_multiplies_bfloat16,
    policy_scope,
    precision_for,
    race_products,
)
from nlp.training.run import RunOptions, train
from nlp.util.config import ExperimentConfig, ModelConfig
from tests.conftest import REPO, TRANSFORMER, tiny_overrides

CPU_FLAGS = "flags\t\t: fpu vme sse sse2 avx2 avx512f avx512bw {extra} xsave\n"


def test_auto_takes_whichever_product_the_race_found_faster() -> None:
    """`auto` on a CPU with bfloat16 instructions: bfloat16 where it multiplies faster here,
    float32 where it is slower (both seen on machines listing the same flags)."""
    fast = Race(float32=200.0, bfloat16=390.0)
    slow = Race(float32=300.0, bfloat16=160.0)
    assert precision_for("auto", gpus=0, native_bfloat16=True, race=lambda: fast) == (
        BFLOAT16_PRODUCTS
    )
    assert precision_for("auto", gpus=0, native_bfloat16=True, race=lambda: slow) == FLOAT32


def test_auto_races_only_where_bfloat16_could_win() -> None:
    def never() -> Race:
        raise AssertionError("no race without native bfloat16, or with a GPU, or when set")

    assert precision_for("auto", gpus=0, native_bfloat16=False, race=never) == FLOAT32
    assert precision_for("auto", gpus=1, native_bfloat16=True, race=never) == FLOAT32
    assert precision_for("float32", gpus=0, native_bfloat16=True, race=never) == FLOAT32
    assert precision_for("bfloat16", gpus=0, native_bfloat16=False, race=never) == (
        BFLOAT16_PRODUCTS
    )
    assert precision_for("float16", gpus=2, native_bfloat16=False, race=never) == FLOAT16
    assert BFLOAT16_PRODUCTS.policy == "float32"  # only the large products round operands


def test_the_race_is_cached_per_machine_and_sizes(tmp_path: Path) -> None:
    """Every run on a machine makes the first run's choice (a seeded run is reproduced, a
    resumed one computes as before); other model sizes race again."""
    cache = PrecisionCache(tmp_path / "cache" / "precision.json")
    calls: list[ProductSizes] = []

    def stub(sizes: ProductSizes) -> dict[str, float]:
        calls.append(sizes)
        return {"float32": 100.0, "bfloat16": 150.0 + len(calls)}

    small = ProductSizes(tokens=64, batch=8, units=16, embedding=16, vocab=100)
    first = cache.race(small, stub)
    assert first == Race(float32=100.0, bfloat16=151.0) and first.faster == "bfloat16"
    assert PrecisionCache(cache.path).race(small, stub) == first and len(calls) == 1
    PrecisionCache(cache.path).race(replace(small, vocab=200), stub)
    assert len(calls) == 2


def test_a_real_race_measures_both_products() -> None:
    sizes = ProductSizes(tokens=32, batch=4, units=16, embedding=8, vocab=64)
    measured = race_products(sizes, seconds=0.05)
    assert set(measured) == {"float32", "bfloat16"}
    assert all(0 < value < 1e6 for value in measured.values())  # GFLOP/s


def test_product_sizes_come_from_the_config() -> None:
    config = ExperimentConfig().with_overrides(
        ["train.batch_size=32", "train.max_target_length=20", "model.units=64",
         "model.embedding_dim=50", "vocab.max_size=5000"])
    assert ProductSizes.of(config) == ProductSizes(640, 32, 64, 50, 5000)
    # a resumed run's saved config holds the counted vocabulary: the same sizes, the same key
    counted = replace(config, model=replace(config.model, vocab_size=123))
    assert ProductSizes.of(counted) == ProductSizes.of(config)


def test_float16_without_a_gpu_falls_back_to_float32(capsys: pytest.CaptureFixture[str]) -> None:
    assert precision_for("float16", gpus=0, native_bfloat16=True) == FLOAT32
    assert "needs a GPU" in capsys.readouterr().err


def test_unknown_precision_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"auto, float32, bfloat16, float16.*'half'"):
        precision_for("half", gpus=0, native_bfloat16=True)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [("avx512_bf16 avx512_vnni", True), ("amx_bf16 amx_tile", True), ("avx512_vnni", False)],
)
def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path, extra: str, expected: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\n" + CPU_FLAGS.format(extra=extra) + "bugs\t\t: avx512_bf16\n"
    )
    assert cpu_multiplies_bfloat16(cpuinfo) is expected


def test_no_cpuinfo_means_no_bfloat16(tmp_path: Path) -> None:
    assert cpu_multiplies_bfloat16(tmp_path / "missing") is False


def test_configs_saved_with_mixed_precision_load_as_precision() -> None:
    raw = ExperimentConfig().to_dict()
    del raw["train"]["precision"]
    for legacy, expected in ((True, "float16"), (False, "auto")):
        raw["train"]["mixed_precision"] = legacy
        assert ExperimentConfig.from_dict(raw).train.precision == expected


def test_policy_scope_builds_under_the_policy_and_restores_it() -> None:
    before = keras.config.dtype_policy().name
    with policy_scope("mixed_float16"):
        model = Seq2Seq(ModelConfig(vocab_size=30, embedding_dim=8, units=8))
    assert keras.config.dtype_policy().name == before == "float32"
    assert model.dtype_policy.name == "mixed_float16"
    assert {v.dtype for v in model.trainable_variables} == {"float32"}


@pytest.mark.parametrize(
    "kw",
    [{}, {"cell": "gru", "input_feeding": False}, {"copy": True, "attention": "general"},
     TRANSFORMER],
)
def test_bfloat16_loss_and_gradients_are_close_to_float32(kw: dict[str, object]) -> None:
    """The same weights with and without bfloat16 products: the loss agrees to bfloat16's
    rounding and every weight gets a float32 gradient pointing the same way."""
    config = ModelConfig(vocab_size=40, embedding_dim=16, units=16, dropout=0.0, **kw)
    keras.utils.set_random_seed(0)
    full = Seq2Seq(config)
    half = Seq2Seq(config, products="bfloat16")
    half.set_weights(full.get_weights())
    rng = np.random.default_rng(0)
    source = rng.integers(4, 40, (4, 9))
    source[0, 6:] = 0
    target = rng.integers(4, 40, (4, 6))
    target[1, 4:] = 0

    def loss_and_grads(model: Seq2Seq) -> tuple[float, list[np.ndarray]]:
        with tf.GradientTape() as tape:
            outputs = model.teacher_forcing(source, target[:, :-1], training=True)
            loss = masked_mean_loss(outputs, target[:, 1:], config.vocab_size)
        grads = tape.gradient(loss, model.trainable_variables)
        assert all(g.dtype == tf.float32 for g in grads)
        return float(loss), [tf.convert_to_tensor(g).numpy().ravel() for g in grads]

    loss32, grads32 = loss_and_grads(full)
    loss16, grads16 = loss_and_grads(half)
    assert loss16 != loss32  # the products really were rounded
    assert abs(loss16 - loss32) < 0.02 * loss32
    for g32, g16 in zip(grads32, grads16, strict=True):
        assert np.all(np.isfinite(g16))
        if np.linalg.norm(g32) > 1e-6:
            cosine = g32 @ g16 / (np.linalg.norm(g32) * np.linalg.norm(g16))
            assert cosine > 0.98, (cosine, np.linalg.norm(g32))


def _bfloat16_matmuls(model: Seq2Seq) -> int:
    graph = tf.function(lambda s, t: model.teacher_forcing(s, t).logits).get_concrete_function(
        tf.TensorSpec([2, 5], tf.int32), tf.TensorSpec([2, 4], tf.int32)
    ).graph
    return sum(
        op.type in ("MatMul", "BatchMatMulV2") and op.outputs[0].dtype == tf.bfloat16
        for op in graph.get_operations()
    )


def test_a_transformer_s_layer_products_are_bfloat16_matmuls_and_its_attention_is_not() -> None:
    config = ModelConfig(vocab_size=30, embedding_dim=8, units=8, **TRANSFORMER)
    # encoder layer: queries-keys-values, output, feed-forward in and out; decoder layer: the
    # same and attention to the memory's queries, keys-values, output; the output projection
    assert _bfloat16_matmuls(Seq2Seq(config, products="bfloat16")) == 4 + 7 + 1
    assert _bfloat16_matmuls(Seq2Seq(config)) == 0


def test_bfloat16_products_are_bfloat16_matmuls() -> None:
    model = Seq2Seq(ModelConfig(vocab_size=30, embedding_dim=8, units=8), products="bfloat16")
    # encoder input projections (2 directions), the keys (general attention), decoder input
    # projection, output projection; the loops' products are inside their while loops
    assert _bfloat16_matmuls(model) == 5


@pytest.mark.slow
def test_a_bfloat16_training_run_saves_a_float32_model(tmp_path: Path) -> None:
    corpus = REPO / "corpora" / "dialogue-en.jsonl"
    config = ExperimentConfig().with_overrides(tiny_overrides(**{"train.precision": "bfloat16"}))
    state = train(config, CorpusSpec((corpus,)), RunOptions(tmp_path / "run", verbose=0))
    assert np.isfinite(state.best_valid_loss)
    assert keras.config.dtype_policy().name == "float32"
    bundle = load_bundle(tmp_path / "run" / "model")
    assert bundle.config.train.precision == "bfloat16"
    assert bundle.model.dtype_policy.name == "float32"
    assert bundle.model.products is None


def test_a_resumed_run_computes_as_the_run_it_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race decides once per run: resumed where a new race would choose the other dtype
    (a deleted cache, a near tie on a busy machine), the run keeps its dtypes, so its weights
    stay those of the uninterrupted run. A dtype named on resume is taken as named."""
    import nlp.training.run as run

    chosen = {"now": BFLOAT16_PRODUCTS}
    monkeypatch.setattr(run, "resolve_precision", lambda *_: (chosen["now"], None))
    auto = ExperimentConfig().with_overrides(tiny_overrides())
    assert run.training_precision(auto, RunOptions(tmp_path, verbose=0)) == BFLOAT16_PRODUCTS
    chosen["now"] = FLOAT32
    resumed = RunOptions(tmp_path, resume=True, verbose=0)
    assert run.training_precision(auto, resumed) == BFLOAT16_PRODUCTS
    named = ExperimentConfig().with_overrides(tiny_overrides(**{"train.precision": "float32"}))
    assert run.training_precision(named, resumed) == FLOAT32
    assert run.training_precision(auto, RunOptions(tmp_path, verbose=0)) == FLOAT32  # a new run
