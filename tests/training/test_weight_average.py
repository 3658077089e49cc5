"""`train.ema_decay`: a moving average of the weights that validation, selection and the
saved bundle see, while training goes on from the raw weights as if there were none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nlp.training.trainer import Hooks, Selection, Trainer
from tests.training.test_trainer import examples, make_trainer

pytestmark = pytest.mark.slow  # every test fits a model

DECAY = 0.9


def recording(trainer: Trainer, monkeypatch: pytest.MonkeyPatch) -> list[list[np.ndarray]]:
    """The model's weights before the first step and after every step, as training sets
    them (read outside the compiled step)."""
    weights = [[v.numpy().copy() for v in trainer.model.trainable_variables]]
    step = trainer.train_batch

    def recorded(*batch):  # type: ignore[no-untyped-def]
        loss = step(*batch)
        weights.append([v.numpy().copy() for v in trainer.model.trainable_variables])
        return loss

    monkeypatch.setattr(trainer, "train_batch", recorded)
    return weights


def moving_average(trajectory: list[list[np.ndarray]], steps: int) -> list[np.ndarray]:
    """The average after `steps` updates, as the docstring of
    `nlp.training.optim.WeightAverage` states it (float64 here): each step moves it towards
    the new weights by the larger of the bias-corrected rate and the ramp's 9 / (10 + t)."""
    average = [w.astype(np.float64) for w in trajectory[0]]
    for t in range(1, steps + 1):
        rate = max((1 - DECAY) / (1 - DECAY**t), 9 / (10 + t))
        average = [a + rate * (w - a) for a, w in zip(average, trajectory[t], strict=True)]
    return average


def test_the_rate_is_the_bias_corrected_one_or_the_ramps() -> None:
    """Hand-computed: at decay 0.99 the ramp (9 / (10 + t)) sets the rate for the first
    steps, the bias-corrected decay once the run is about ten times the window long."""
    import tensorflow as tf

    from nlp.training.optim import WeightAverage

    weight = tf.Variable([0.0])
    average = WeightAverage({"model/w": weight}, 0.99)
    expected = 0.0
    for t, value in enumerate([10.0, 0.0, 20.0], start=1):
        weight.assign([value])
        average.update(tf.constant(t))
        rate = {1: 1.0, 2: 9 / 12, 3: 9 / 13}[t]
        expected += rate * (value - expected)
        assert average.copies["average/model/w"].numpy()[0] == pytest.approx(expected)
    assert expected == pytest.approx(10.0 * 0.25 * 4 / 13 + 20.0 * 9 / 13)
    late = WeightAverage({"model/w": tf.Variable([1.0])}, 0.99)
    late.copies["average/model/w"].assign([0.0])
    late.update(tf.constant(5000))  # 9 / 5010 < 0.01 / (1 - 0.99^5000)
    assert late.copies["average/model/w"].numpy()[0] == pytest.approx(0.01 / (1 - 0.99**5000))


def test_validation_and_the_kept_model_see_the_average_and_training_the_raw_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = examples(64)
    plain = make_trainer(tmp_path / "plain", epochs=2, learning_rate=0.01)
    plain.fit(data, data[:8])

    trainer = make_trainer(tmp_path / "ema", epochs=2, learning_rate=0.01, ema_decay=DECAY,
                           select_by="last")
    trajectory = recording(trainer, monkeypatch)
    scored: list[list[np.ndarray]] = []
    kept: list[tuple[int, list[np.ndarray]]] = []

    def score() -> float:
        scored.append([v.numpy().copy() for v in trainer.model.trainable_variables])
        return 0.0

    def keep(state) -> None:  # type: ignore[no-untyped-def]
        kept.append((state.global_step, [v.numpy().copy() for v in trainer.model.weights]))

    average = trainer.average
    assert average is not None
    swap = average.swap
    swaps: list[int] = []

    def counted() -> None:
        swaps.append(1)
        swap()

    monkeypatch.setattr(average, "swap", counted)
    state = trainer.fit(data, data[:8], hooks=Hooks(on_improved=keep,
                                                    selection=Selection("rouge", score)))
    assert state.epoch == 2 and len(kept) == 2 and len(scored) == 2
    assert len(swaps) == 4  # in and out once an epoch end: validated, scored and kept together
    # training went on from the raw weights: the same trajectory as without an average
    for a, b in zip(plain.model.weights, trainer.model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for (step, saved), seen in zip(kept, scored, strict=True):
        expected = moving_average(trajectory, step)
        for got, want, scored_as in zip(saved, expected, seen, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
            np.testing.assert_array_equal(got, scored_as)  # the score saw what was kept
        assert any(not np.array_equal(a, b) for a, b in zip(saved, trajectory[step],
                                                             strict=True))


def test_a_resumed_run_averages_as_an_uninterrupted_one(tmp_path: Path) -> None:
    data = examples(48)
    straight = make_trainer(tmp_path / "straight", epochs=2, ema_decay=DECAY)
    straight.fit(data, data[:8])
    make_trainer(tmp_path / "cut", epochs=1, ema_decay=DECAY).fit(data, data[:8])
    resumed = make_trainer(tmp_path / "cut", epochs=2, ema_decay=DECAY)
    resumed.fit(data, data[:8], resume=True)
    assert straight.average is not None and resumed.average is not None
    assert straight.average.copies.keys() == resumed.average.copies.keys()
    for key, value in straight.average.copies.items():
        np.testing.assert_array_equal(value.numpy(), resumed.average.copies[key].numpy())


@pytest.mark.parametrize("decay", [1.0, -0.5])
def test_a_decay_outside_zero_to_one_is_refused(tmp_path: Path, decay: float) -> None:
    with pytest.raises(ValueError, match=r"train\.ema_decay"):
        make_trainer(tmp_path, ema_decay=decay)


def test_a_part_epoch_kept_by_the_budget_is_the_average(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The time budget ends inside the first epoch: the model validated and saved there is
    the moving average of the steps trained so far, and the raw weights come back after."""
    from nlp.training import clock
    from tests.training.test_trainer import StepClock

    data = examples(48)
    trainer = make_trainer(tmp_path, epochs=2, learning_rate=0.01, ema_decay=DECAY,
                           max_minutes=3)
    trajectory = recording(trainer, monkeypatch)
    monkeypatch.setattr(clock, "time", StepClock())
    kept: list[tuple[int, list[np.ndarray]]] = []

    def keep(state) -> None:  # type: ignore[no-untyped-def]
        kept.append((state.global_step, [v.numpy().copy() for v in trainer.model.weights]))

    state = trainer.fit(data, data[:8], hooks=Hooks(on_improved=keep))
    assert state.epoch == 0 and state.history[-1]["partial_epoch"] is True
    (step, saved), = kept
    assert step == state.global_step and step > 0
    for got, want in zip(saved, moving_average(trajectory, step), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    for raw, after in zip(trajectory[step], trainer.model.trainable_variables, strict=True):
        np.testing.assert_array_equal(raw, after.numpy())


def test_the_compiled_update_averages_as_the_plain_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train.jit_optimizer` compiles the average's update with the optimizer's: the same
    averages as the update run op by op."""
    from nlp.training import trainer as trainer_module

    data = examples(48)
    plain = make_trainer(tmp_path / "plain", ema_decay=DECAY, jit_optimizer=False)
    plain.fit(data, data[:8])
    monkeypatch.setattr(trainer_module, "XLA_UPDATE_MIN_WEIGHTS", 0)
    compiled = make_trainer(tmp_path / "xla", ema_decay=DECAY, jit_optimizer=True)
    assert hasattr(compiled.update, "experimental_get_tracing_count")  # it is compiled
    compiled.fit(data, data[:8])
    assert plain.average is not None and compiled.average is not None
    for key, value in plain.average.copies.items():
        np.testing.assert_allclose(value.numpy(), compiled.average.copies[key].numpy(),
                                   rtol=1e-4, atol=1e-5)
        assert key.startswith("average/model/")
    moved = [
        not np.allclose(a.numpy(), b.numpy())
        for a, b in zip(compiled.average.copies.values(),
                        (v for v, _ in compiled.average.pairs), strict=True)
    ]
    assert any(moved)  # the averages are not simply the weights
