"""The training loop's cost structure: one trace for all batch shapes, and the loss read
back from the device once every `train.log_every` steps rather than every step."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import tensorflow as tf

from nlp.config import ExperimentConfig, ModelConfig
from nlp.model import Seq2Seq
from nlp.training.trainer import Trainer


def examples(count: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(seed)
    return [
        ([rng.randrange(4, 30) for _ in range(rng.randint(1, 30))],
         [rng.randrange(4, 30) for _ in range(rng.randint(1, 12))])
        for _ in range(count)
    ]


def make_trainer(tmp_path: Path, **train: object) -> Trainer:
    tf.keras.utils.set_random_seed(0)
    config = ExperimentConfig().with_overrides(
        ["train.batch_size=8", "train.bucket_width=4", "train.epochs=1",
         *(f"train.{k}={v}" for k, v in train.items())]
    )
    model = Seq2Seq(ModelConfig(vocab_size=30, embedding_dim=8, units=8, dropout=0.0))
    return Trainer(model, config.train, tmp_path, verbose=0)


def test_one_trace_for_every_batch_shape(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path)
    data = examples(160)
    trainer.fit(data, data[:16])
    # bucketing gave batches of several source and target lengths and sizes
    assert trainer.train_batch.experimental_get_tracing_count() == 1


def test_loss_is_read_back_every_log_every_steps(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    trainer = make_trainer(tmp_path, log_every=5, checkpoint_every=1000)
    reads: list[int] = []
    original = trainer._report

    def counting(losses, state, bar, writer):  # type: ignore[no-untyped-def]
        reads.append(len(losses))
        original(losses, state, bar, writer)

    monkeypatch.setattr(trainer, "_report", counting)
    data = examples(160)
    state = trainer.fit(data, data[:16])
    assert sum(reads) == state.global_step  # every step's loss is reported once
    assert len(reads) == -(-state.global_step // 5)  # in groups of log_every (last shorter)
    assert all(n == 5 for n in reads[:-1])


def test_select_by_last_keeps_every_epoch(tmp_path: Path) -> None:
    """`train.select_by=last` saves the model after every epoch, improved or not."""
    from nlp.training.trainer import Hooks

    trainer = make_trainer(tmp_path, select_by="last", epochs=3, learning_rate=5.0,
                           patience=1)
    saved: list[int] = []
    data = examples(48)
    state = trainer.fit(data, data[:8], hooks=Hooks(on_improved=lambda s: saved.append(s.epoch)))
    assert saved == [1, 2, 3] and state.epoch == 3  # no early stop, every epoch kept


def test_plateau_schedule_lowers_the_rate_after_each_stalled_epoch(tmp_path: Path) -> None:
    """`train.lr_schedule=plateau`: x decay_rate after an epoch that did not improve the
    selection score, unchanged after one that did; the checkpoint keeps the lowered rate."""
    from nlp.training.checkpoint import load_checkpoint
    from nlp.training.trainer import Hooks, Selection

    scores = iter([0.1, 0.3, 0.2, 0.25, 0.4])
    rates: list[float] = []
    trainer = make_trainer(tmp_path, lr_schedule="plateau", learning_rate=0.01,
                           decay_rate=0.5, epochs=5, patience=3)

    def score() -> float:
        rates.append(float(trainer.optimizer.learning_rate.numpy()))  # rate of this epoch
        return next(scores)

    data = examples(48)
    state = trainer.fit(data, data[:8], hooks=Hooks(selection=Selection("rouge", score)))
    assert state.epoch == 5 and state.best_epoch == 5
    assert rates == pytest.approx([0.01, 0.01, 0.01, 0.005, 0.0025])
    restored = make_trainer(tmp_path / "other", lr_schedule="plateau", learning_rate=0.01)
    load_checkpoint(tmp_path / "checkpoint", restored.model, restored.optimizer)
    assert float(restored.optimizer.learning_rate.numpy()) == pytest.approx(0.0025)


def test_constant_schedule_keeps_the_rate(tmp_path: Path) -> None:
    from nlp.training.trainer import Hooks, Selection

    scores = iter([0.3, 0.2])
    trainer = make_trainer(tmp_path, learning_rate=0.01, epochs=2, patience=3)
    data = examples(48)
    trainer.fit(data, data[:8], hooks=Hooks(selection=Selection("rouge", lambda: next(scores))))
    assert float(trainer.optimizer.learning_rate.numpy()) == pytest.approx(0.01)
