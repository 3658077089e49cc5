"""Adam with a learning-rate schedule and global-norm gradient clipping."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from nlp.util.config import TrainConfig


@keras.saving.register_keras_serializable("s2s")
class WarmupInverseSqrt(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then decay with 1/sqrt(step): the usual schedule for Adam on seq2seq."""

    def __init__(self, peak: float, warmup_steps: int) -> None:
        self.peak = peak
        self.warmup_steps = max(1, warmup_steps)

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        step = tf.cast(step, tf.float32) + 1.0
        warmup = tf.cast(self.warmup_steps, tf.float32)
        return self.peak * tf.minimum(step / warmup, tf.sqrt(warmup / step))

    def get_config(self) -> dict[str, float | int]:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps}


# The schedules the trainer steps itself (a float rate it changes), then the per-step ones.
STEPPED_SCHEDULES = ("constant", "plateau", "linear")
LR_SCHEDULES = (*STEPPED_SCHEDULES, "inverse_sqrt", "exponential")


def check_schedule(config: TrainConfig) -> None:
    """A ValueError for an `lr_schedule` no optimizer here has, naming those there are, and
    for a warm-up the schedule would not do (`exponential` has none)."""
    if config.lr_schedule not in LR_SCHEDULES:
        raise ValueError(
            f"unknown lr_schedule {config.lr_schedule!r}; use {', '.join(LR_SCHEDULES)}")
    if config.warmup_steps < 0:
        raise ValueError(f"train.warmup_steps must be >= 0, got {config.warmup_steps}")
    if config.warmup_steps and config.lr_schedule == "exponential":
        raise ValueError("train.warmup_steps: the exponential schedule has no warm-up; use "
                         f"one of {', '.join((*STEPPED_SCHEDULES, 'inverse_sqrt'))}")


def warm_share(config: TrainConfig, step: int) -> float:
    """The share of its rate the step after `step` steps takes under a linear warm-up of
    `warmup_steps` (1 without one, and from the warm-up's last step on). Why a warm-up: Adam's
    first steps divide by second moments estimated from a handful of gradients (Liu et al.
    2020, "On the Variance of the Adaptive Learning Rate and Beyond"), and at a high rate a
    loss with a sharp term (the vocabulary unlikelihood's -ln(1 - p)) can leave the basin
    the likelihood is descending before those estimates settle."""
    return min(1.0, (step + 1) / max(1, config.warmup_steps))


def warmup_rate(config: TrainConfig, step: int) -> float | None:
    """The rate the trainer sets for the step after `step` steps to warm up a schedule it
    steps itself (`constant`, `plateau`), or None where it sets none: outside
    `warmup_steps` (whose last step sets the full rate), and under `linear`, which sets every
    step's rate anyway (`linear_rate`)."""
    warms = config.lr_schedule in STEPPED_SCHEDULES and config.lr_schedule != "linear"
    if not warms or step >= config.warmup_steps:
        return None
    return config.learning_rate * warm_share(config, step)


def learning_rate(config: TrainConfig) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The optimizer's learning rate: a float for the schedules the trainer steps itself
    (`constant`, and `plateau`, which the trainer multiplies by `decay_rate` after an epoch
    that did not lower the validation loss: `plateau_decay`), else a per-step schedule."""
    check_schedule(config)
    if config.lr_schedule in STEPPED_SCHEDULES:
        return config.learning_rate
    if config.lr_schedule == "inverse_sqrt":
        return WarmupInverseSqrt(config.learning_rate, config.warmup_steps)
    return keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, config.decay_steps, config.decay_rate
    )


def run_progress(config: TrainConfig, train_seconds: float, step: int, epoch_batches: int) -> float:
    """How much of its budget a run has used, in [0, 1]: the larger of the share of
    `max_minutes` spent in training steps and the share of `epochs` x `epoch_batches` batches
    done (whichever limit ends the run first)."""
    by_steps = step / max(1, config.epochs * epoch_batches)
    by_time = train_seconds / (60.0 * config.max_minutes) if config.max_minutes else 0.0
    return min(1.0, max(by_steps, by_time))


def ranking_stage_steps(config: TrainConfig, steps_so_far: int) -> int:
    """How many steps the ranking loss trains when early stopping ends the likelihood's part
    of a run before `train.contrastive_from` was reached: its share of the run as it ran,
    `steps_so_far` standing for the share `contrastive_from`. Why not the share of the budget
    left: a run that stopped early at half of a long budget would then spend half of it on
    a stage the chat recipes give 0.15 / 0.85 of the likelihood's time."""
    share = config.contrastive_from
    return max(1, math.ceil(steps_so_far * (1.0 - share) / share))


def linear_rate(config: TrainConfig, progress: float, step: int) -> float:
    """The `linear` schedule's rate for the step after `step` steps, `progress` into the run:
    from `learning_rate` down to 0 where the budget ends (after a linear warm-up of
    `warmup_steps`, if any). Why: under a fixed budget a rate that falls linearly to zero
    over it ended lower than a constant or step-decayed one in Li, Yumer and Ramanan 2020
    ("Budgeted training"), and unlike a per-step schedule it follows a wall-clock budget,
    whose step count nobody knows in advance. No preset uses it: on the chat-en recipe it
    ended higher than the constant rate with a moving average of the weights
    (docs/BENCHMARKS.md, "A ranking loss beside the likelihood")."""
    return config.learning_rate * warm_share(config, step) * (1.0 - progress)


def _rated(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer that holds the rate: under loss scaling (float16) Keras wraps the one
    that steps in a `LossScaleOptimizer`, whose own rate is not what the steps read."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def current_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The rate the next step uses."""
    return float(_rated(optimizer).learning_rate.numpy())


def set_rate(optimizer: keras.optimizers.Optimizer, rate: float) -> None:
    """Set the optimizer's rate (a variable: checkpoints keep it, compiled steps read it)."""
    _rated(optimizer).learning_rate = rate


def plateau_decay(optimizer: keras.optimizers.Optimizer, config: TrainConfig) -> float:
    """After an epoch that did not lower the validation loss, lower the learning rate by
    `decay_rate` (the `plateau` schedule; Luong et al. 2015 halve it the same way). Why not a
    per-step schedule: under a wall-clock budget nobody knows in advance how many steps there
    will be, and waiting for validation to stall spends the high rate while it still helps.
    The rate is an optimizer variable, so checkpoints keep it. Returns the new rate."""
    rate = current_rate(optimizer) * config.decay_rate
    set_rate(optimizer, rate)
    return rate


class Rewind:
    """The weights and Adam moments of the epoch with the lowest validation loss so far,
    restored when the `plateau` schedule lowers the rate (`train.plateau_rewind`).

    Why: a stalled epoch has usually begun to overfit (on a few thousand chat pairs the
    validation loss rises right after its minimum); lowering the rate from there refines an
    overfitted model, from the best one it refines the best. The copies are variables saved
    in the checkpoint (`copies`), so a resumed run rewinds as an uninterrupted one would.
    """

    def __init__(self, trained: Mapping[str, tf.Variable]) -> None:
        """`trained`: the weights and slots to copy, keyed as the checkpoint stores them
        (`checkpoint.trained_variables`); the step count and the rate go on, and dropout's
        seed state too, so a rewound epoch draws new masks."""
        self.copies = {
            f"rewind/{key}": tf.Variable(value, trainable=False) for key, value in trained.items()
        }
        self.pairs = [(variable, self.copies[f"rewind/{key}"]) for key, variable in trained.items()]

    def keep(self) -> None:
        for variable, copy in self.pairs:
            copy.assign(variable)

    def restore(self) -> None:
        for variable, copy in self.pairs:
            variable.assign(copy)


# The ramp of the average's rate, AVERAGE_RAMP / (AVERAGE_RAMP + 1 + t) after step t
# (TensorFlow's ExponentialMovingAverage: decay (1 + t) / (10 + t)); `WeightAverage`.
AVERAGE_RAMP = 9.0


class WeightAverage:
    """An exponential moving average of the model's weights (`train.ema_decay`), updated
    after every step; validation, the selection of the best epoch and the saved bundle see
    the average, and training goes on from the raw weights (`swap` in, measure, `swap` out).

    Why: each step's weights are a noisy point of a wandering path, and the epoch-end
    weights that validation picks from are one such point; the average of the last steps is
    the path's centre, which generalises at least as well (Polyak & Juditsky 1992) at the
    cost of one copy of the weights. On the chat recipes the budget's bundle validates
    lower with it in both languages (docs/BENCHMARKS.md "A moving average of the weights").
    The headline preset does without: on LCSTS it lowered the loss and not the ROUGE.

    Each step moves the average towards the new weights by the larger of two rates: the
    decay's, bias-corrected as Adam's moments are ((1 - decay) / (1 - decay^t): the random
    initial weights never count), and 9 / (10 + t), the ramp of TensorFlow's
    `ExponentialMovingAverage(num_updates=t)`, so the window is about a ninth of the steps
    so far until it reaches 1 / (1 - decay). Why the ramp: without it the average of a run
    shorter than the window is the mean of all its steps, early ones included (a recipe's
    first epoch, a short retraining, every tiny test model). The averages are checkpoint
    variables (`copies`): a resumed run averages as an uninterrupted one.
    """

    def __init__(self, trained: Mapping[str, tf.Variable], decay: float) -> None:
        """`trained`: as for `Rewind`; only the model's weights (keys `model/...`) are
        averaged, not the optimizer's slots. `decay`: in (0, 1), which `objective.check`
        holds `train.ema_decay` to."""
        self.decay = decay
        # ONLY_FIRST_REPLICA: under a distribution strategy every replica holds the same
        # weights, so one replica's update of the average is everyone's.
        self.copies = {
            f"average/{key}": tf.Variable(
                value, trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA
            )
            for key, value in trained.items()
            if key.startswith("model/")
        }
        self.pairs = [
            (variable, self.copies[f"average/{key}"])
            for key, variable in trained.items()
            if key.startswith("model/")
        ]

    def update(self, step: tf.Tensor) -> None:
        """Move the averages towards the weights after update number `step` (1 = first)."""
        # avg_t = avg_(t-1) + (w_t - avg_(t-1)) * rate_t: at t = 1 the rate is 1, so the
        # initial copy (of the random weights) drops out.
        t = tf.cast(step, tf.float32)
        corrected = (1.0 - self.decay) / (1.0 - tf.pow(self.decay, t))
        rate = tf.maximum(corrected, AVERAGE_RAMP / (AVERAGE_RAMP + 1.0 + t))
        for variable, average in self.pairs:
            average.assign_add(rate * (tf.cast(variable, average.dtype) - average))

    def swap(self) -> None:
        """Exchange the weights and their averages (twice: back as before)."""
        for variable, average in self.pairs:
            raw = tf.identity(variable)
            variable.assign(average)
            average.assign(raw)

    def reset(self) -> None:
        """Start the averages again from the weights as they are (after a rewind)."""
        for variable, average in self.pairs:
            average.assign(variable)


class FrozenRows:
    """Embedding rows taken from pretrained vectors, kept as loaded for the first
    `train.freeze_pretrained_epochs` epochs (-1: for good) while everything else trains.

    Why a gradient gate rather than `trainable=False`: the rows share one matrix with rows
    that must learn (special tokens, words without a vector). The gate is a variable, so one
    traced step serves frozen and unfrozen epochs; Adam's moments of a frozen row stay zero,
    so the row does not move at all. The row mask is saved in the checkpoint (`copies`), so
    a resumed run freezes the same rows without reading the vectors again.
    """

    def __init__(self, model: keras.Model, rows: np.ndarray, epochs: int) -> None:
        self.epochs = epochs
        self.mask = tf.Variable(
            np.asarray(rows, np.float32).reshape(-1, 1), trainable=False, name="frozen_rows"
        )
        self.active = tf.Variable(0.0, trainable=False, name="frozen_rows_active")
        self.paths = {
            model.source_embedding.embeddings.path, model.target_embedding.embeddings.path
        }
        self.copies = {"frozen_rows/mask": self.mask}

    def frozen_in(self, epoch: int) -> bool:
        """Whether the rows stay as loaded in `epoch` (0-based)."""
        return self.epochs < 0 or epoch < self.epochs

    def start_epoch(self, epoch: int) -> None:
        self.active.assign(1.0 if self.frozen_in(epoch) else 0.0)

    def gate(
        self, variables: Sequence[keras.Variable], gradients: list[tf.Tensor]
    ) -> list[tf.Tensor]:
        """The gradients with the frozen rows' zeroed while the freeze lasts."""
        keep = 1.0 - self.mask * self.active
        return [
            g * tf.cast(keep, g.dtype) if v.path in self.paths else g
            for v, g in zip(variables, gradients, strict=True)
        ]


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    clip = config.clip_norm if config.clip_norm > 0 else None
    return keras.optimizers.Adam(learning_rate=learning_rate(config), global_clipnorm=clip)
