"""`model.recurrence`: the written-out loops and Keras' LSTM/GRU layers run the same weights
and give the same numbers (both run here, on the CPU), so a model trained one way loads,
resumes and decodes the other way; `auto` picks by device."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlp.decoding import DecodeOptions
from nlp.generation.bundle import load_bundle
from nlp.generation.generator import Generator
from nlp.model import Seq2Seq, recurrence
from nlp.model.losses import masked_mean_loss
from nlp.training.checkpoint import TrainState, load_checkpoint, save_checkpoint, variable_paths
from nlp.training.corpus_io import CorpusSpec
from nlp.training.run import RunOptions, resume_settings, train
from nlp.util.config import ExperimentConfig, ModelConfig
from tests.conftest import REPO, tiny_overrides

VARIANTS = [
    {},  # the default: LSTM, general attention, input feeding (the written attention loop)
    {"cell": "gru"},
    {"input_feeding": False, "encoder_layers": 2, "decoder_layers": 2},
    {"cell": "gru", "input_feeding": False, "encoder_layers": 2, "decoder_layers": 2},
    {"input_feeding": False, "copy": True, "attention": "bahdanau"},
    {"cell": "gru", "attention": "none", "input_feeding": False, "peek": True},
    {"coverage": True, "decoder_layers": 2},
]
SOURCE = np.array([[5, 6, 7, 0, 0], [8, 9, 9, 10, 11], [4, 0, 0, 0, 0]])
TARGET_IN = np.array([[1, 5, 6, 7], [1, 9, 8, 4], [1, 4, 0, 0]])
TARGET_OUT = np.array([[5, 6, 7, 2], [9, 8, 4, 2], [4, 2, 0, 0]])
TEXTS = ["hello there", "how are you ?", "what is your name"]


def _config(**kw: object) -> ModelConfig:
    return ModelConfig(vocab_size=30, embedding_dim=8, units=8, dropout=0.0, **kw)  # type: ignore[arg-type]


def _pair(**kw: object) -> tuple[Seq2Seq, Seq2Seq]:
    """The same model twice, written-out loops and Keras layers, with the same weights
    (non-zero biases, so a misplaced bias cannot hide behind zeros)."""
    keras.utils.set_random_seed(5)
    written = Seq2Seq(_config(recurrence="written", **kw))
    for variable in written.trainable_variables:
        variable.assign(tf.random.normal(variable.shape, stddev=0.3))
    layers = Seq2Seq(_config(recurrence="keras", **kw))
    layers.set_weights(written.get_weights())
    return written, layers


def _loss_and_gradients(model: Seq2Seq) -> tuple[tf.Tensor, list[tf.Tensor]]:
    with tf.GradientTape() as tape:
        outputs = model.teacher_forcing(SOURCE, TARGET_IN, training=True)
        loss = masked_mean_loss(outputs, TARGET_OUT, 30, coverage_weight=1.0)
    return loss, tape.gradient(loss, model.trainable_variables)


def test_auto_is_written_on_a_cpu_and_keras_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    assert recurrence.resolve("auto") == ("keras" if on_gpu else "written")
    assert Seq2Seq(_config()).recurrence == ("keras" if on_gpu else "written")
    monkeypatch.setattr(recurrence, "gpu_available", lambda: True)
    assert recurrence.resolve("auto") == "keras"
    assert Seq2Seq(_config()).recurrence == "keras"
    monkeypatch.setattr(recurrence, "gpu_available", lambda: False)
    assert Seq2Seq(_config()).recurrence == "written"
    assert Seq2Seq(_config(recurrence="keras")).recurrence == "keras"  # asked for: kept


def test_recurrence_is_a_checked_config_option() -> None:
    config = ExperimentConfig().with_overrides(["model.recurrence=keras"])
    assert config.model.recurrence == "keras"
    old = ExperimentConfig().to_dict()
    del old["model"]["recurrence"]  # a config.json written before the option existed
    assert ExperimentConfig.from_dict(old).model.recurrence == "auto"
    with pytest.raises(ValueError, match="recurrence must be one of auto, keras, written"):
        Seq2Seq(_config(recurrence="cudnn"))
    with pytest.raises(ValueError, match="recurrence must be one of"):
        recurrence.resolve("cudnn")
    # both recurrences train the same weights: a run may resume on another device
    resumed, changes = resume_settings(ExperimentConfig(), config)
    assert resumed.model.recurrence == "keras" and changes == ["model.recurrence auto -> keras"]


def test_both_recurrences_have_the_same_variables() -> None:
    written, layers = _pair(input_feeding=False, decoder_layers=2, cell="gru")
    # the same variables in the same order (Keras's layer names differ between any two
    # models of one process, so the object paths below are what checkpoints key by)
    assert [(v.name, v.shape) for v in written.variables] == [
        (v.name, v.shape) for v in layers.variables
    ]
    assert {p: v.shape for p, v in variable_paths(written).items()} == {
        p: v.shape for p, v in variable_paths(layers).items()
    }


def test_the_keras_decoder_layer_is_the_documented_rnn_over_the_model_cell() -> None:
    """Keras documents `keras.layers.RNN(cell, ...)` for running a given cell; its LSTM and GRU
    layers take no cell, so assigning one into them would rest on Keras' internals."""
    layers = Seq2Seq(_config(recurrence="keras", input_feeding=False, decoder_layers=2))
    sequences = layers._decoder_sequences.layers
    assert [type(layer) for layer in sequences] == [keras.layers.RNN] * 2
    assert [layer.cell for layer in sequences] == layers.decoder_cells
    assert all(layer.return_sequences and layer.return_state for layer in sequences)


@pytest.mark.parametrize("kw", VARIANTS)
def test_keras_layers_agree_with_the_written_loops(kw: dict[str, object]) -> None:
    written, layers = _pair(**kw)
    (state_w, context_w), (state_k, context_k) = written.encode(SOURCE), layers.encode(SOURCE)
    assert state_w.keys() == state_k.keys()
    for name in state_w:
        np.testing.assert_allclose(state_k[name].numpy(), state_w[name].numpy(), atol=1e-5)
    real = context_w["mask"].numpy()  # outputs at padded positions are masked, not compared
    np.testing.assert_allclose(
        context_k["memory"].numpy()[real], context_w["memory"].numpy()[real], atol=1e-5
    )
    np.testing.assert_allclose(
        layers((SOURCE, TARGET_IN)).numpy(), written((SOURCE, TARGET_IN)).numpy(), atol=1e-5
    )
    (loss_w, grads_w), (loss_k, grads_k) = _loss_and_gradients(written), _loss_and_gradients(
        layers
    )
    np.testing.assert_allclose(loss_k.numpy(), loss_w.numpy(), rtol=1e-6)
    for variable, grad_w, grad_k in zip(written.trainable_variables, grads_w, grads_k, strict=True):
        np.testing.assert_allclose(
            tf.convert_to_tensor(grad_k).numpy(), tf.convert_to_tensor(grad_w).numpy(),
            atol=1e-5, err_msg=variable.path,
        )


def test_states_agree_on_a_row_without_real_tokens() -> None:
    """cuDNN refuses fully masked rows; the Keras path counts the first step as real, which
    is where the written loops read such a row's states too."""
    written, layers = _pair(cell="gru")
    source = np.array([[5, 6, 0], [0, 0, 0]])
    (state_w, _), (state_k, _) = written.encode(source), layers.encode(source)
    np.testing.assert_allclose(state_k["rnn_0"].numpy(), state_w["rnn_0"].numpy(), atol=1e-6)


def test_keras_layers_train_in_a_compiled_step() -> None:
    """The trainer's step is a tf.function: the Keras layers must trace inside one."""
    written, layers = _pair(input_feeding=False)
    step = tf.function(_loss_and_gradients)
    (loss_w, _), (loss_k, _) = step(written), step(layers)
    np.testing.assert_allclose(loss_k.numpy(), loss_w.numpy(), rtol=1e-6)


def test_checkpoint_of_one_recurrence_restores_into_the_other(tmp_path: Path) -> None:
    written, _ = _pair(input_feeding=False, cell="gru")
    optimizer = keras.optimizers.Adam()
    optimizer.build(written.trainable_variables)
    save_checkpoint(tmp_path, written, optimizer, TrainState(global_step=3))
    keras.utils.set_random_seed(9)  # other initial weights, which the restore must replace
    layers = Seq2Seq(_config(recurrence="keras", input_feeding=False, cell="gru"))
    other = keras.optimizers.Adam()
    other.build(layers.trainable_variables)
    assert load_checkpoint(tmp_path, layers, other).global_step == 3
    np.testing.assert_allclose(
        layers((SOURCE, TARGET_IN)).numpy(), written((SOURCE, TARGET_IN)).numpy(), atol=1e-5
    )


def _greedy(generator: Generator) -> list[tuple[str, float]]:
    results = generator.generate(TEXTS, DecodeOptions(strategy="greedy", max_length=8))
    return [(best[0].text, best[0].score) for best in results]


def _assert_same_replies(one: Generator, other: Generator) -> None:
    for (text_a, score_a), (text_b, score_b) in zip(_greedy(one), _greedy(other), strict=True):
        assert text_a == text_b
        assert score_a == pytest.approx(score_b, abs=1e-4)


def test_bundle_trained_on_a_cpu_decodes_with_keras_layers(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tiny bundle trained here with `auto` (written on this CPU); loaded where a GPU is
    seen, the same bundle runs Keras' layers and replies the same."""
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this test pretends to move a CPU-trained bundle onto a GPU")
    written = Generator.from_bundle(tiny_bundle)
    assert written.bundle.model.recurrence == "written"
    meta = json.loads((tiny_bundle / "metadata.json").read_text(encoding="utf-8"))
    assert meta["recurrence"] == "written"
    monkeypatch.setattr(recurrence, "gpu_available", lambda: True)
    layers = Generator.from_bundle(tiny_bundle)
    assert layers.bundle.model.recurrence == "keras"
    _assert_same_replies(written, layers)


@pytest.mark.slow
def test_training_with_keras_layers_says_so_and_decodes_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ExperimentConfig().with_overrides(
        tiny_overrides(**{"model.recurrence": "keras", "model.input_feeding": False})
    )
    train(config, CorpusSpec((REPO / "corpora" / "dialogue-en.jsonl",)), RunOptions(tmp_path))
    lines = capsys.readouterr().err.splitlines()
    assert [line for line in lines if line.startswith("recurrence:")] == [
        "recurrence: keras (model.recurrence=keras)"
    ]
    bundle = load_bundle(tmp_path / "model")
    assert bundle.metadata["recurrence"] == "keras"
    assert bundle.config.model.recurrence == "keras"
    # the same weights file in a model built with the written loops replies the same
    model = Seq2Seq(replace(bundle.config.model, recurrence="written"))
    model.load_weights(bundle.path / "model.weights.h5")
    _assert_same_replies(Generator(bundle), Generator(replace(bundle, model=model)))
