"""Checkpoints restore each value into its own variable, found by object path."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlp.model import Seq2Seq
from nlp.training.checkpoint import TrainState, load_checkpoint, read_state, save_checkpoint
from nlp.util.config import ModelConfig


class TwoTowers(keras.Model):
    """Two same-shaped layers with auto-generated names, created in either order.

    Reordering the creation is the refactor that must not swap their weights on restore.
    """

    def __init__(self, left_first: bool) -> None:
        super().__init__()
        if left_first:
            self.left = keras.layers.Dense(3)
            self.right = keras.layers.Dense(3)
        else:
            self.right = keras.layers.Dense(3)
            self.left = keras.layers.Dense(3)
        self.left.build((None, 3))
        self.right.build((None, 3))
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return self.left(x) + self.right(x)


def _trained(model: keras.Model) -> keras.optimizers.Optimizer:
    """An Adam that took one step with a different gradient per weight (distinct moments)."""
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    grads = [tf.fill(v.shape, float(i + 1)) for i, v in enumerate(model.trainable_variables)]
    optimizer.apply(grads, model.trainable_variables)
    return optimizer


def _slot(optimizer: keras.optimizers.Optimizer, weight: keras.Variable, slot: str) -> np.ndarray:
    name = f"{weight.path.replace('/', '_')}_{slot}"
    return next(v.numpy() for v in optimizer.variables if v.name == name)


def test_restore_follows_object_paths_not_creation_order(tmp_path: Path) -> None:
    saved = TwoTowers(left_first=True)
    saved.left.kernel.assign(np.full((3, 3), 1.0))
    saved.right.kernel.assign(np.full((3, 3), 2.0))
    optimizer = _trained(saved)
    save_checkpoint(tmp_path, saved, optimizer, TrainState(epoch=2, step_in_epoch=5))

    restored = TwoTowers(left_first=False)  # right's variables now come first
    fresh = keras.optimizers.Adam()
    fresh.build(restored.trainable_variables)
    state = load_checkpoint(tmp_path, restored, fresh)

    assert (state.epoch, state.step_in_epoch) == (2, 5)
    for name in ("left", "right"):
        before, after = getattr(saved, name), getattr(restored, name)
        np.testing.assert_array_equal(after.kernel.numpy(), before.kernel.numpy())
        np.testing.assert_array_equal(after.bias.numpy(), before.bias.numpy())
        for slot in ("momentum", "velocity"):
            np.testing.assert_array_equal(
                _slot(fresh, after.kernel, slot), _slot(optimizer, before.kernel, slot)
            )
    assert int(fresh.iterations.numpy()) == 1


def test_seq2seq_roundtrip_includes_dropout_seed_state_and_rotates(tmp_path: Path) -> None:
    config = ModelConfig(vocab_size=20, embedding_dim=4, units=4, dropout=0.3)
    model = Seq2Seq(config)
    optimizer = _trained(model)
    seeds = [v for v in model.variables if "seed_generator" in v.path]
    assert seeds
    for i, seed in enumerate(seeds):
        seed.assign([7, 100 + i])
    for step in range(1, 6):
        save_checkpoint(tmp_path, model, optimizer, TrainState(global_step=step))
    assert len(list(tmp_path.glob("ckpt-*.index"))) == 3  # rotated
    assert read_state(tmp_path).global_step == 5

    other = Seq2Seq(config)  # created later in this process: other auto-generated names
    other_optimizer = keras.optimizers.Adam()
    other_optimizer.build(other.trainable_variables)
    load_checkpoint(tmp_path, other, other_optimizer)
    for a, b in zip(model.variables, other.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(optimizer.variables, other_optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_checkpoint_of_another_config_is_a_clear_error(tmp_path: Path) -> None:
    model = Seq2Seq(ModelConfig(vocab_size=20, embedding_dim=4, units=4))
    save_checkpoint(tmp_path, model, _trained(model), TrainState())
    bigger = Seq2Seq(ModelConfig(vocab_size=21, embedding_dim=4, units=4))
    optimizer = keras.optimizers.Adam()
    optimizer.build(bigger.trainable_variables)
    with pytest.raises(ValueError, match=r"source_embedding/_embeddings has shape \(20, 4\)"):
        load_checkpoint(tmp_path, bigger, optimizer)


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    model = Seq2Seq(ModelConfig(vocab_size=20, embedding_dim=4, units=4))
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        load_checkpoint(tmp_path, model, _trained(model))


def test_reopen_follows_the_limits_of_the_resumed_run() -> None:
    state = TrainState(epoch=2, bad_epochs=1, train_seconds=90.0, finished=True)
    state.reopen(epochs=4, patience=3, max_minutes=0.0)
    assert not state.finished
    state.reopen(epochs=2, patience=3, max_minutes=0.0)
    assert state.finished
    state.reopen(epochs=4, patience=1, max_minutes=0.0)
    assert state.finished
    state.reopen(epochs=4, patience=3, max_minutes=1.0)
    assert state.finished
    state.reopen(epochs=4, patience=3, max_minutes=2.0)
    assert not state.finished
