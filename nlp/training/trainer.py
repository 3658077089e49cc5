"""The training loop: teacher forcing, validation, early stopping, checkpoints, resume.

A hand-written loop rather than `model.fit` because resuming mid-epoch at the exact batch,
with the optimizer state and the random state, is the point: a long run killed at any time
continues as if it had not been.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from nlp.model.language_models import Sums
from nlp.model.losses import token_losses
from nlp.tokenizers.specials import PAD_ID
from nlp.training.checkpoint import (
    TrainState,
    load_checkpoint,
    save_checkpoint,
    trained_variables,
    variable_paths,
)
from nlp.training.clock import RunClock
from nlp.training.data import (
    BATCH_SPEC,
    Batching,
    EncodedExamples,
    Example,
    as_dataset,
    encoded,
)
from nlp.training.objective import Objective, everywhere
from nlp.training.optim import (
    FrozenRows,
    Rewind,
    WeightAverage,
    linear_rate,
    make_optimizer,
    plateau_decay,
    ranking_stage_steps,
    run_progress,
    set_rate,
    warmup_rate,
)
from nlp.util.config import TrainConfig
from nlp.util.progress import Progress

CHECKPOINT_DIR = "checkpoint"
# train.jit_optimizer compiles the update only for models at least this large: what XLA saves
# a step grows with the number of weights, and its start-up (seconds per process) must be paid
# back within a short training.
XLA_UPDATE_MIN_WEIGHTS = 1_000_000
LOG_DIR = "logs"


def dense_gradients(gradients: Sequence[Any]) -> list[tf.Tensor]:
    """Embedding gradients as dense tensors of their variables' shapes, duplicates summed.

    An embedding's gradient comes sparse, one row per token of the batch. Two reasons not to
    hand that to the optimizer: (1) its shape changes with every batch shape, and XLA
    compiles a new program for every new input shape (~1 s each; with `train.jit_optimizer`
    the headline preset's first epoch ran 2-3x slower, compiling); (2) Keras 3's Adam squares
    each row of a sparse gradient before summing a token's repeats into the second moment,
    which is not Adam's (sum of the token's gradients, squared) and differs from the update
    the same step would get from a dense gradient. Dense, every path takes the same update.
    """
    return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in gradients]


@dataclass(frozen=True)
class Selection:
    """A validation score (higher is better) that replaces validation loss for picking the best
    epoch, e.g. ROUGE-L of decoded headlines (`train.select_by`). Early stopping waits for
    epochs that improve neither the score nor the loss; the plateau schedule follows the loss."""

    name: str  # recorded in the history as f"valid_{name}"
    score: Callable[[], float]  # called at each epoch end, on the current weights


class Validation(NamedTuple):
    """One validation of the weights in the model."""

    loss: float  # what the run compares (bundle, schedule, early stopping)
    cross_entropy: float  # per target token: the perplexity's
    ranking: float | None  # the ranking loss, once it is trained (`Trainer._ranks_now`)
    score: float | None  # the selection score (`train.select_by`), if any


@dataclass
class Hooks:
    """Calls out of the loop; `on_improved` saves the best model (the bundle)."""

    on_improved: Callable[[TrainState], None] | None = None
    selection: Selection | None = None  # None: the lowest validation loss is best


class LossMeter:
    """Mean cross-entropy per target token of a model on examples (no smoothing, no dropout),
    or the mean of another per-token loss: `sums` (an `Objective`'s `validation_sums`), whose
    first two values are a loss's sum and count; `totals` adds up every value it returns.
    `seed`: the examples are batched in the corpus order (None) or in this seed's shuffle,
    the same at every call (a ranking loss compares a batch's rows with each other: in the
    corpus order a row's neighbour is often the turn before it in its conversation, whose
    reply is the row's own message)."""

    def __init__(
        self,
        model: keras.Model,
        batching: Batching,
        sums: Callable[[tf.Tensor, tf.Tensor, tf.Tensor], Sums | tuple[tf.Tensor, ...]]
        | None = None,
        seed: int | None = None,
    ) -> None:
        self.model = model
        self.batching = batching
        self.seed = seed
        self._sums = tf.function(sums or self._batch_sums, input_signature=list(BATCH_SPEC))

    def _batch_sums(
        self, source: tf.Tensor, target_in: tf.Tensor, target_out: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        outputs = self.model.teacher_forcing(source, target_in, training=False)
        losses, mask = token_losses(outputs, target_out, self.model.config.vocab_size)
        return tf.reduce_sum(losses), tf.reduce_sum(mask)

    def __call__(self, examples: Sequence[Example] | EncodedExamples) -> float:
        """`examples` may come encoded already: the trainer encodes its validation set once
        for every epoch's measurement."""
        total, count = self.totals(examples)[:2]
        return total / max(count, 1.0)

    def totals(self, examples: Sequence[Example] | EncodedExamples) -> list[float]:
        """Each value `sums` returns, summed over the batches of `examples`."""
        totals: list[float] = []
        for batch in encoded(examples).batches(self.batching, seed=self.seed):
            values = [float(value) for value in self._sums(*batch)]
            totals = [a + b for a, b in zip(totals, values, strict=True)] if totals else values
        return totals or [0.0, 0.0]


def batching_for(config: TrainConfig) -> Batching:
    return Batching(
        config.batch_size,
        config.bucket_width,
        max(config.max_source_length, config.max_target_length + 1),
    )


YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"


def avoid_ynn_fusions() -> None:
    """Keep YNNPACK fusions out of XLA's CPU code, unless the user's `XLA_FLAGS` set them.

    TensorFlow 2.21's XLA:CPU can die of SIGSEGV in `xla::cpu::EmitYnnSubgraph` while it
    builds an executable for a new shape, which the training step's compiled clusters meet
    at the buckets' partial batches (in runs with the language-model losses and in `s2s
    pretrain`). XLA reads its flags once, at its first compile, so this
    works in a process that has not compiled anything yet (every `s2s` training command).
    Decoding keeps the fusions: its XLA pick is faster with them and never crashed.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if YNN_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {YNN_FLAG}=".strip()


class Trainer:
    """Trains one model; `run_dir` holds the checkpoint and the TensorBoard logs."""

    def __init__(
        self,
        model: keras.Model,
        config: TrainConfig,
        run_dir: Path,
        *,
        verbose: int = 1,
        strategy: tf.distribute.Strategy | None = None,
        pretrained_rows: np.ndarray | None = None,
        objective: Objective | None = None,
    ) -> None:
        """`strategy` must be the one whose scope created `model` (default: no distribution).
        `pretrained_rows`: bool [vocab], the embedding rows taken from pretrained vectors,
        frozen for `config.freeze_pretrained_epochs` (on resume, any array of that shape: the
        checkpoint holds the rows). `objective`: what the step minimises (default: the
        seq2seq `Objective` of `config`); the layers it trains beside the model are in the
        optimizer and the checkpoint."""
        avoid_ynn_fusions()
        self.model = model
        self.config = config
        self.run_dir = run_dir
        self.verbose = verbose
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.objective = objective if objective is not None else Objective(model, config)
            self.variables = [*model.trainable_variables, *self.objective.trainable_variables]
            self.optimizer = make_optimizer(config)
            if model.dtype_policy.name == "mixed_float16":  # float16 needs loss scaling
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
            self.optimizer.build(self.variables)
            self.rewind = (
                Rewind(trained_variables(model, self.optimizer))
                if config.lr_schedule == "plateau" and config.plateau_rewind
                else None
            )
            self.average = (
                WeightAverage(trained_variables(model, self.optimizer), config.ema_decay)
                if config.ema_decay != 0
                else None
            )
            self.frozen = (
                FrozenRows(model, pretrained_rows, config.freeze_pretrained_epochs)
                if pretrained_rows is not None and config.freeze_pretrained_epochs != 0
                else None
            )
        variables = self.variables
        average = self.average

        def update(grads: list[tf.Tensor]) -> None:
            """The optimizer's update of every trained variable from dense gradients (the
            step's last part; benchmarks/train_throughput.py --update times it alone), and of
            the weights' average: compiled together, XLA reads each new weight once for
            both."""
            self.optimizer.apply(grads, variables)
            if average is not None:
                average.update(self.optimizer.iterations)

        self.update = update
        if (
            config.jit_optimizer
            and not config.jit_compile
            and self.strategy.num_replicas_in_sync == 1
            and model.count_params() >= XLA_UPDATE_MIN_WEIGHTS
        ):
            # Adam's update is a dozen element-wise passes over every weight; XLA fuses them
            # into one (benchmarks/train_throughput.py times both). XLA for the whole step was
            # slower (its while loops), and under a strategy the update's cross-replica merge
            # cannot compile. Small models skip it: XLA's start-up (seconds) is
            # more than their whole update costs over a short training.
            # Fixed (dense) input shapes: one XLA program for every batch shape.
            self.update = tf.function(
                self.update,
                input_signature=[[tf.TensorSpec(v.shape, v.dtype) for v in variables]],
                jit_compile=True,
            )
        self.batching = batching_for(config)
        self.evaluate_loss = LossMeter(model, self.batching, self.objective.validation_sums)
        ranks = self.objective.config.contrastive_weight > 0
        self.evaluate_ranked = (
            LossMeter(model, self.batching, self.objective.validation_ranked_sums,
                      seed=config.seed)
            if ranks else None)
        # the step of the whole objective, and (train.contrastive_from) the likelihood's
        # alone, which runs until the ranking loss joins: its own graph, without the ranking
        # loss's second decoder pass (the objective's own settings: pretraining has none)
        self.ranking_from = config.contrastive_from if ranks else 0.0
        self.train_batch = self._compiled(ranking=True)
        self.likelihood_batch = (
            self._compiled(ranking=False) if self.ranking_from > 0 else self.train_batch
        )

    def _compiled(self, ranking: bool) -> Callable[..., tf.Tensor]:
        """The compiled training step, with or without the ranking loss."""

        def step(source: tf.Tensor, target_in: tf.Tensor, target_out: tf.Tensor) -> tf.Tensor:
            return self._distributed_step(source, target_in, target_out, ranking)

        if self.strategy.num_replicas_in_sync == 1:
            # One trace for every batch shape: bucketing gives many (batch, length) shapes.
            return tf.function(
                step, input_signature=list(BATCH_SPEC), jit_compile=self.config.jit_compile
            )
        # per-replica inputs do not fit a TensorSpec signature
        return tf.function(step, reduce_retracing=True, jit_compile=self.config.jit_compile)

    @property
    def checkpoint_extras(self) -> dict[str, tf.Variable]:
        """Variables the checkpoint holds besides the model's and the optimizer's."""
        extras = dict(self.rewind.copies) if self.rewind is not None else {}
        if self.average is not None:
            extras.update(self.average.copies)
        if self.frozen is not None:
            extras.update(self.frozen.copies)
        for name, layer in self.objective.layers.items():
            extras.update(
                {f"objective/{name}/{path}": v.value for path, v in variable_paths(layer).items()}
            )
        return extras

    def _save(self, checkpoint: Path, state: TrainState) -> None:
        save_checkpoint(checkpoint, self.model, self.optimizer, state, self.checkpoint_extras)

    def _distributed_step(
        self, source: tf.Tensor, target_in: tf.Tensor, target_out: tf.Tensor, ranking: bool
    ) -> tf.Tensor:
        """One batch, split over the strategy's replicas; returns the mean loss."""
        per_replica = self.strategy.run(
            self._step, args=(source, target_in, target_out), kwargs={"ranking": ranking}
        )
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def _step(
        self, source: tf.Tensor, target_in: tf.Tensor, target_out: tf.Tensor, ranking: bool
    ) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self.objective.loss(
                source, target_in, target_out, self.optimizer.iterations, ranking=ranking
            )
            # The replicas' gradients are summed: weight each replica's mean by its share of
            # the global batch's target tokens, so the sum is the mean over the whole batch
            # (equal to one process training on that batch; replicas' halves differ in tokens).
            tokens = tf.reduce_sum(tf.cast(tf.not_equal(target_out, PAD_ID), tf.float32))
            total = everywhere(tokens)
            loss *= tokens / tf.maximum(total, 1.0)
            scaled = self.optimizer.scale_loss(loss)  # loss scaling under mixed precision
        variables = self.variables
        gradients = dense_gradients(tape.gradient(scaled, variables))
        if self.frozen is not None:
            gradients = self.frozen.gate(variables, gradients)
        self.update(gradients)
        return loss

    def fit(
        self,
        train: Sequence[Example] | EncodedExamples,
        valid: Sequence[Example] | EncodedExamples,
        *,
        resume: bool = False,
        hooks: Hooks | None = None,
    ) -> TrainState:
        hooks = hooks or Hooks()
        checkpoint = self.run_dir / CHECKPOINT_DIR
        if not resume and checkpoint.exists():
            # a new run in an old run's directory: until its own first save, `--resume` would
            # find the old run's weights and counters there (and take them, shapes matching)
            shutil.rmtree(checkpoint)
        state = (
            load_checkpoint(checkpoint, self.model, self.optimizer, self.checkpoint_extras)
            if resume
            else TrainState()
        )
        if resume:  # the limits may have changed (s2s train --resume --epochs N)
            if state.bad_epochs >= self.config.patience and self._ranking_due(state):
                # stopped early before its ranking stage (by a version that let early
                # stopping end such a run, or resumed with less patience): the stage comes now
                self._out_of_patience(state)
            state.reopen(self.config.epochs, self.config.patience, self.config.max_minutes)
        writer = tf.summary.create_file_writer(str(self.run_dir / LOG_DIR))
        cfg = self.config
        every = max(1, cfg.log_every)
        training, validation = encoded(train), encoded(valid)
        while not state.finished and state.epoch < cfg.epochs:
            plan = training.plan(self.batching, seed=cfg.seed, epoch=state.epoch)
            total = len(plan)
            rest = plan[state.step_in_epoch :]
            if self.strategy.num_replicas_in_sync > 1:  # the strategy splits each batch
                batches = self.strategy.experimental_distribute_dataset(as_dataset(training, rest))
            else:
                batches = (training.batch(indices) for indices in rest)
            self._log(f"epoch {state.epoch + 1}/{cfg.epochs}")
            if self.frozen is not None:
                self.frozen.start_epoch(state.epoch)
                if self.frozen.frozen_in(state.epoch):
                    self._log("  embedding rows from pretrained vectors frozen this epoch")
            bar = Progress(sys.stdout if self.verbose else None, "steps", total, interval=0.05,
                           start=state.step_in_epoch)
            bar.update(state.step_in_epoch)
            clock = RunClock(state.train_seconds, self.strategy)
            staged = self.ranking_from > 0
            timed = bool(cfg.max_minutes) or cfg.lr_schedule == "linear" or staged
            spent = state.train_seconds  # the clock as every worker agreed on it, after a step
            pending: list[tf.Tensor] = []  # losses not yet read back to the host
            out_of_time = False
            for batch in batches:
                if cfg.lr_schedule == "linear" or staged:
                    progress = run_progress(cfg, spent, state.global_step, total)
                if cfg.lr_schedule == "linear":
                    set_rate(self.optimizer, linear_rate(cfg, progress, state.global_step))
                elif (warm := warmup_rate(cfg, state.global_step)) is not None:
                    set_rate(self.optimizer, warm)
                if staged and state.ranking_step < 0 and progress >= self.ranking_from:
                    self._ranking_joins(state)
                alone = staged and state.ranking_step < 0
                step = self.likelihood_batch if alone else self.train_batch
                pending.append(step(*batch))
                state.step_in_epoch += 1
                state.global_step += 1
                if timed:
                    spent = clock.seconds(state.global_step)
                saving = state.global_step % max(1, cfg.checkpoint_every) == 0
                if len(pending) >= every or saving:
                    self._report(pending, state, bar, writer)
                    pending = []
                    state.train_seconds = clock.local()
                if saving:
                    self._save(checkpoint, state)
                if cfg.max_minutes and spent >= 60 * cfg.max_minutes:
                    self._log(f"  time budget of {cfg.max_minutes} min reached")
                    state.finished = out_of_time = True
                    break
                if 0 <= state.ranking_until <= state.global_step:
                    self._log("  the ranking loss has trained its share of the run")
                    state.finished = out_of_time = True
                    break
            if pending:
                self._report(pending, state, bar, writer)
            state.train_seconds = spent if out_of_time else clock.local()
            if out_of_time and state.step_in_epoch < total:
                # Stopped mid-epoch: the epoch is not counted (a resumed run goes on from
                # this batch, as the uninterrupted run would) and no schedule or early
                # stopping sees it; only the bundle may take these weights.
                with self._averaged():  # validated and kept: the average, if any
                    self._part_epoch(state, validation, hooks, total, writer)
                self._save(checkpoint, state)
                return state
            self._end_epoch(state, validation, hooks, writer)
            self._save(checkpoint, state)
        state.finished = True
        self._save(checkpoint, state)
        return state

    def _ranking_joins(self, state: TrainState, when: str = "") -> None:
        """The ranking loss joins the likelihood from this step on (`train.contrastive_from`),
        and the validation loss from here on adds it at its weight (`_validate`). What was
        validated before was trained for, and measured by, another objective: every
        comparison starts afresh here (the bundle's pick, the plateau schedule's rewind,
        early stopping), so the first validation after it is kept and the rewind never goes
        back to weights the ranking loss has not seen."""
        state.ranking_step = state.global_step
        state.start_afresh()
        when = when or f"{self.ranking_from:.0%} of the run"
        self._log(
            f"  the ranking loss joins at step {state.global_step} "
            f"({when}): the bundle is chosen from here on"
        )

    def _report(
        self, losses: list[tf.Tensor], state: TrainState, bar: Progress, writer: Any
    ) -> None:
        """Read the last steps' losses back from the device: one host sync per `log_every`."""
        loss = float(tf.reduce_mean(tf.stack(losses)))
        if not math.isfinite(loss):
            first = state.global_step - len(losses) + 1
            raise FloatingPointError(
                f"training loss became {loss} between steps {first} and {state.global_step}; "
                "lower train.learning_rate or set train.clip_norm"
            )
        bar.update(state.step_in_epoch, f"loss {loss:.4f}")
        with writer.as_default(step=state.global_step):
            tf.summary.scalar("train/loss", loss)

    def _part_epoch(
        self, state: TrainState, valid: EncodedExamples, hooks: Hooks, total: int, writer: Any
    ) -> None:
        """The budget (or a ranking stage brought forward) ended inside an epoch: validate
        the weights as they stand and keep them in the bundle when they beat its model
        (always, inside the first epoch, where there is none yet). Why: on a budget-bound
        recipe the last part-epoch is up to a third of the training, and a model that has
        trained longer usually validates better. The history records it as a part-epoch
        (`partial_epoch`, a fractional `epoch`); the epoch count, the schedule and early
        stopping never see it, so `--resume` still goes on from this batch exactly as the
        uninterrupted run would."""
        measured = self._validate(valid, hooks, state)
        valid_loss, score = measured.loss, measured.score
        position = state.epoch + round(state.step_in_epoch / max(1, total), 3)
        record = self._record(state, position, measured, hooks)
        record["partial_epoch"] = True
        state.history.append(record)
        with writer.as_default(step=state.global_step):
            tf.summary.scalar("valid/part_epoch_loss", valid_loss)
        writer.flush()
        kept = self._beats(valid_loss, score, state.best_valid_loss, state.best_score)
        self._log(
            f"  the run ended {state.step_in_epoch} of {total} batches into epoch "
            f"{state.epoch + 1}: {self._described(measured, hooks)}"
            + ("  (best so far: the bundle keeps these weights)" if kept else
               f"  (the bundle keeps epoch {state.best_epoch:g})")
        )
        if kept:
            state.best_valid_loss, state.best_epoch = valid_loss, position
            if score is not None:
                state.best_score = score
            if hooks.on_improved is not None:
                hooks.on_improved(state)

    def _beats(
        self, valid_loss: float, score: float | None, best_loss: float, best_score: float
    ) -> bool:
        """Whether a validation (loss, selection score) beats the best one so far."""
        if self.config.select_by == "last":  # keep the latest model (tiny validation sets)
            return True
        if score is None:
            return valid_loss < best_loss - 1e-6
        return score > best_score + 1e-9

    def _end_epoch(
        self, state: TrainState, valid: EncodedExamples, hooks: Hooks, writer: Any
    ) -> None:
        with self._averaged():  # validated, kept for the rewind and saved: the average, if any
            improved, lowered = self._judge_epoch(state, valid, hooks, writer)
        state.bad_epochs = 0 if improved or lowered else state.bad_epochs + 1
        if state.bad_epochs >= self.config.patience:
            self._out_of_patience(state)
        elif not lowered and self.config.lr_schedule == "plateau":
            self._rewind(state)
            rate = plateau_decay(self.optimizer, self.config)
            self._log(f"  learning rate lowered to {rate:.3g}")

    def _out_of_patience(self, state: TrainState) -> None:
        """Early stopping ends the run, or brings its ranking stage forward when that is still
        to come: back to the lowest-loss weights, the ranking loss joins there and trains its
        share of the run as it ran (`ranking_stage_steps`), then the run ends."""
        if not self._ranking_due(state):
            self._log(f"  early stop: no improvement for {state.bad_epochs} epochs")
            state.finished = True
            return
        self._log(f"  no improvement for {state.bad_epochs} epochs, before the ranking loss "
                  "joined:")
        self._rewind(state)
        self._ranking_joins(state, "brought forward by early stopping")
        state.ranking_until = state.global_step + ranking_stage_steps(
            self.config, state.global_step)
        self._log(f"  it trains {state.ranking_until - state.global_step} steps, its share of "
                  "the run, and the run ends")

    def _ranking_due(self, state: TrainState) -> bool:
        """Whether the run has a ranking stage (`train.contrastive_from`) still to come. Early
        stopping must not end such a run: its bundle would lack the stage that teaches the
        model which reply fits which message, the longer budget giving the worse model."""
        return self.ranking_from > 0 and state.ranking_step < 0

    def _rewind(self, state: TrainState) -> None:
        """Back to the lowest-loss epoch's weights (`train.plateau_rewind`), if kept."""
        if self.rewind is not None and state.lowest_epoch > 0:
            self.rewind.restore()
            if self.average is not None:
                self.average.reset()
            self._log(f"  weights back to epoch {state.lowest_epoch}")

    def _judge_epoch(
        self, state: TrainState, valid: EncodedExamples, hooks: Hooks, writer: Any
    ) -> tuple[bool, bool]:
        """Validate the epoch's weights, record them, keep them for the rewind when they lower
        the loss and in the bundle when they are the best: (improved, lowered)."""
        measured = self._validate(valid, hooks, state)
        valid_loss, score = measured.loss, measured.score
        record = self._record(state, state.epoch + 1, measured, hooks)
        state.history.append(record)
        with writer.as_default(step=state.epoch + 1):
            tf.summary.scalar("valid/loss", valid_loss)
            tf.summary.scalar("valid/perplexity", record["valid_perplexity"])
            if measured.ranking is not None:
                tf.summary.scalar("valid/ranking", measured.ranking)
            if score is not None and hooks.selection is not None:
                tf.summary.scalar(f"valid/{hooks.selection.name}", score)
        writer.flush()
        state.epoch += 1
        state.step_in_epoch = 0
        # `improved`: better than every complete epoch (early stopping's test, as in an
        # uninterrupted run); `kept`: better than the bundle's model, which may be a
        # part-epoch an earlier budget kept.
        improved = self._beats(
            valid_loss, score, state.epochs_best_valid_loss, state.epochs_best_score
        )
        kept = self._beats(valid_loss, score, state.best_valid_loss, state.best_score)
        self._log(f"  {self._described(measured, hooks)}" + ("  (best so far)" if kept else ""))
        # The plateau schedule follows the validation loss (what the optimizer lowers);
        # early stopping waits for epochs that improve neither the loss nor the selection.
        # Why not the selection score for both: ROUGE on a 200-pair sample is noisy, and
        # halving the rate on a single dip while the loss still fell cost most (Reuters draws
        # halved after such a dip at epoch 2-3 ended with the highest losses; README,
        # "Training speed"). Under select_by=loss the two tests are the same one.
        lowered = valid_loss < state.lowest_valid_loss - 1e-6
        if lowered:
            state.lowest_valid_loss, state.lowest_epoch = valid_loss, state.epoch
            if self.rewind is not None:
                self.rewind.keep()
        if improved:
            state.epochs_best_valid_loss = valid_loss
            if score is not None:
                state.epochs_best_score = score
        if kept:
            state.best_valid_loss, state.best_epoch = valid_loss, state.epoch
            if score is not None:
                state.best_score = score
            if hooks.on_improved is not None:
                hooks.on_improved(state)
        return improved, lowered

    def _validate(self, valid: EncodedExamples, hooks: Hooks, state: TrainState) -> Validation:
        """The validation of the weights in the model (the callers put the moving average
        there, if the run keeps one): the cross-entropy, plus the ranking loss at its weight
        while the run trains it. Why both: the ranking loss trades likelihood for which reply
        fits which message, so the cross-entropy alone rises as the ranking stage goes on
        and would keep the weights that trained it least, the ranking the stage is for
        measured nowhere; the loss the run lowers, measured on validation, weighs the two as
        training does."""
        score = hooks.selection.score() if hooks.selection is not None else None
        if self.evaluate_ranked is None or not self._ranks_now(state):
            loss = self.evaluate_loss(valid)
            return Validation(loss, loss, None, score)
        loss_sum, tokens, ranking_sum, rows = self.evaluate_ranked.totals(valid)
        cross_entropy, ranking = loss_sum / max(tokens, 1.0), ranking_sum / max(rows, 1.0)
        weight = self.objective.config.contrastive_weight
        return Validation(cross_entropy + weight * ranking, cross_entropy, ranking, score)

    def _ranks_now(self, state: TrainState) -> bool:
        """Whether the ranking loss trains at this point of the run: from the start, or
        since it joined (`train.contrastive_from`)."""
        return self.ranking_from == 0 or state.ranking_step >= 0

    @staticmethod
    def _record(
        state: TrainState, epoch: float, measured: Validation, hooks: Hooks
    ) -> dict[str, Any]:
        """The history's entry of a validation at `epoch` (fractional: a part-epoch)."""
        record: dict[str, Any] = {
            "epoch": epoch,
            "step": state.global_step,
            # time in training steps so far (validation excluded, resumed runs included): how
            # long a run took to reach this loss, for learning curves against wall-clock time
            "train_seconds": round(state.train_seconds, 1),
            "valid_loss": round(measured.loss, 5),
            "valid_perplexity": round(math.exp(min(measured.cross_entropy, 50.0)), 3),
        }
        if measured.ranking is not None:
            record["valid_cross_entropy"] = round(measured.cross_entropy, 5)
            record["valid_ranking"] = round(measured.ranking, 5)
        if measured.score is not None and hooks.selection is not None:
            record[f"valid_{hooks.selection.name}"] = round(measured.score, 5)
        return record

    @staticmethod
    def _described(measured: Validation, hooks: Hooks) -> str:
        """A validation as the log shows it."""
        text = f"valid loss {measured.loss:.4f}"
        if measured.ranking is not None:
            text += f" (cross-entropy {measured.cross_entropy:.4f}, ranking {measured.ranking:.4f})"
        text += f"  perplexity {math.exp(min(measured.cross_entropy, 50.0)):.2f}"
        if measured.score is not None and hooks.selection is not None:
            text += f"  {hooks.selection.name} {measured.score:.4f}"
        return text

    @contextlib.contextmanager
    def _averaged(self) -> Iterator[None]:
        """The weights' moving average in the model's place, if the run keeps one
        (`train.ema_decay`): validation, the selection score, the rewind's copy and the
        saved bundle all see the average; training then goes on from the raw weights."""
        if self.average is None:
            yield
            return
        self.average.swap()
        try:
            yield
        finally:
            self.average.swap()

    def _log(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr, flush=True)
