"""The training loop's cost structure: one trace for all batch shapes, and the loss read
back from the device once every `train.log_every` steps rather than every step."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from nlp.model import Seq2Seq
from nlp.tokenizers.specials import EOS_ID
from nlp.training.trainer import Trainer
from nlp.util.config import ExperimentConfig, ModelConfig

pytestmark = pytest.mark.slow  # every test fits a model


def examples(count: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(seed)
    return [
        ([rng.randrange(4, 30) for _ in range(rng.randint(1, 30))],
         [*(rng.randrange(4, 30) for _ in range(rng.randint(1, 12))), EOS_ID])
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


def scripted_validation(
    trainer: Trainer, monkeypatch: pytest.MonkeyPatch, losses: list[float]
) -> None:
    """Validation losses given per epoch, so the test says which epochs improved them (a
    ranking loss validated beside the cross-entropy: 0)."""
    remaining = iter(losses)
    monkeypatch.setattr(trainer, "evaluate_loss", lambda valid: next(remaining))
    if trainer.evaluate_ranked is not None:
        monkeypatch.setattr(trainer.evaluate_ranked, "totals",
                            lambda valid: [next(remaining), 1.0, 0.0, 1.0])


def test_plateau_schedule_lowers_the_rate_after_each_stalled_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train.lr_schedule=plateau`: x decay_rate after an epoch that did not lower the
    validation loss, unchanged after one that did; the checkpoint keeps the lowered rate."""
    from nlp.training.checkpoint import load_checkpoint
    from nlp.training.trainer import Hooks, Selection

    scores = iter([0.1, 0.3, 0.2, 0.25, 0.4])
    rates: list[float] = []
    trainer = make_trainer(tmp_path, lr_schedule="plateau", learning_rate=0.01,
                           decay_rate=0.5, epochs=5, patience=3)
    scripted_validation(trainer, monkeypatch, [3.0, 2.9, 2.95, 2.9, 2.8])

    def score() -> float:
        rates.append(float(trainer.optimizer.learning_rate.numpy()))  # rate of this epoch
        return next(scores)

    data = examples(48)
    state = trainer.fit(data, data[:8], hooks=Hooks(selection=Selection("rouge", score)))
    assert state.epoch == 5 and state.best_epoch == 5
    assert rates == pytest.approx([0.01, 0.01, 0.01, 0.005, 0.0025])
    restored = make_trainer(tmp_path / "other", lr_schedule="plateau", learning_rate=0.01)
    load_checkpoint(
        tmp_path / "checkpoint", restored.model, restored.optimizer, restored.checkpoint_extras
    )
    assert float(restored.optimizer.learning_rate.numpy()) == pytest.approx(0.0025)


def test_a_score_dip_while_the_loss_falls_neither_lowers_the_rate_nor_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ROUGE on a small validation sample dips by chance; while the validation loss still
    falls, the plateau schedule keeps the rate and early stopping does not count the epoch.
    The kept model is still the best-scoring one."""
    from nlp.training.trainer import Hooks, Selection

    scores = iter([0.1, 0.3, 0.2, 0.25, 0.28, 0.29])
    trainer = make_trainer(tmp_path, lr_schedule="plateau", learning_rate=0.01,
                           decay_rate=0.5, epochs=6, patience=2)
    scripted_validation(trainer, monkeypatch, [3.0, 2.9, 2.8, 2.7, 2.6, 2.5])
    kept: list[int] = []
    data = examples(48)
    state = trainer.fit(data, data[:8], hooks=Hooks(
        selection=Selection("rouge", lambda: next(scores)),
        on_improved=lambda s: kept.append(s.epoch),
    ))
    assert state.epoch == 6 and state.bad_epochs == 0  # patience 2 never ran out
    assert kept == [1, 2] and state.best_epoch == 2 and state.best_score == 0.3
    assert state.lowest_valid_loss == 2.5
    assert float(trainer.optimizer.learning_rate.numpy()) == pytest.approx(0.01)


def test_a_score_gain_while_the_loss_rises_lowers_the_rate_but_is_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rate follows the loss, early stopping both: ROUGE still rising while the loss
    rises halves the rate each epoch, and with patience 1 training goes on."""
    from nlp.training.trainer import Hooks, Selection

    scores = iter([0.1, 0.2, 0.3, 0.4])
    trainer = make_trainer(tmp_path, lr_schedule="plateau", learning_rate=0.01,
                           decay_rate=0.5, epochs=4, patience=1)
    scripted_validation(trainer, monkeypatch, [3.0, 2.9, 2.95, 2.97])
    data = examples(48)
    state = trainer.fit(data, data[:8], hooks=Hooks(selection=Selection("rouge",
                                                                        lambda: next(scores))))
    assert state.epoch == 4 and state.best_epoch == 4 and state.lowest_epoch == 2
    assert float(trainer.optimizer.learning_rate.numpy()) == pytest.approx(0.0025)


@pytest.mark.parametrize("rewind", [True, False])
def test_plateau_rewinds_to_the_lowest_loss_epoch_before_lowering_the_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rewind: bool
) -> None:
    """`train.plateau_rewind`: after a stalled epoch the weights and Adam's moments go back
    to those of the lowest-loss epoch, then the rate is lowered; without it, training goes
    on from the stalled epoch's weights."""
    from nlp.training.trainer import Hooks

    trainer = make_trainer(tmp_path, lr_schedule="plateau", learning_rate=0.01,
                           decay_rate=0.5, epochs=3, patience=3, plateau_rewind=rewind)
    scripted_validation(trainer, monkeypatch, [3.0, 2.9, 2.95])

    def values() -> list[np.ndarray]:  # the weights and Adam's moments (not step, rate)
        slots = trainer.optimizer.variables[2:]
        return [np.array(v.numpy()) for v in [*trainer.model.trainable_variables, *slots]]

    kept: list[list[np.ndarray]] = []
    data = examples(48)
    state = trainer.fit(data, data[:8], hooks=Hooks(on_improved=lambda s: kept.append(values())))
    assert state.epoch == 3 and state.best_epoch == 2 and state.lowest_epoch == 2
    same = all((a == b).all() for a, b in zip(values(), kept[-1], strict=True))
    assert same == rewind
    assert float(trainer.optimizer.learning_rate.numpy()) == pytest.approx(0.005)
    assert [v.name for v in trainer.optimizer.variables[:2]] == ["iteration", "learning_rate"]


def recorded_steps(trainer: Trainer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which compiled step trained each batch: "ranking" (the whole objective) or
    "likelihood" (before train.contrastive_from)."""
    used: list[str] = []
    for name, label in (("train_batch", "ranking"), ("likelihood_batch", "likelihood")):
        compiled = getattr(trainer, name)

        def step(*batch: tf.Tensor, compiled=compiled, label=label) -> tf.Tensor:  # type: ignore[no-untyped-def]
            used.append(label)
            return compiled(*batch)

        monkeypatch.setattr(trainer, name, step)
    return used


def test_the_ranking_loss_joins_at_its_share_and_the_pick_starts_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train.contrastive_from=0.5` of 4 epochs: the first two epochs train the likelihood
    alone, the last two the whole objective. Epoch 3, the first validated with the ranking
    loss, raises the validation loss (as the ranking loss does) and is still kept; the
    plateau schedule neither rewinds to epoch 2's weights nor lowers the rate for it."""
    from nlp.training.trainer import Hooks

    trainer = make_trainer(tmp_path, contrastive_weight=1.0, contrastive_from=0.5, epochs=4,
                           lr_schedule="plateau", learning_rate=0.01, patience=2)
    scripted_validation(trainer, monkeypatch, [3.0, 2.9, 3.2, 3.1])
    used = recorded_steps(trainer, monkeypatch)
    kept: list[int] = []
    data = examples(48)
    state = trainer.fit(data, data[:8], hooks=Hooks(on_improved=lambda s: kept.append(s.epoch)))
    half = state.global_step // 2
    assert state.epoch == 4 and state.ranking_step == half
    assert used == ["likelihood"] * half + ["ranking"] * half
    assert kept == [1, 2, 3, 4] and state.best_epoch == 4
    assert float(trainer.optimizer.learning_rate.numpy()) == pytest.approx(0.01)
    # without it, the same validation losses keep epoch 2 and lower the rate after epoch 3
    plain = make_trainer(tmp_path / "plain", contrastive_weight=1.0, epochs=4,
                         lr_schedule="plateau", learning_rate=0.01, patience=2)
    scripted_validation(plain, monkeypatch, [3.0, 2.9, 3.2, 3.1])
    used = recorded_steps(plain, monkeypatch)
    state = plain.fit(data, data[:8])
    assert set(used) == {"ranking"} and state.best_epoch == 2 and state.ranking_step == -1
    assert float(plain.optimizer.learning_rate.numpy()) < 0.01


def test_a_resumed_run_keeps_the_ranking_loss_it_had_joined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step the ranking loss joined at is in the checkpoint: a run resumed with more
    epochs (a smaller share done) goes on with the whole objective, and its comparisons do
    not start afresh again."""
    settings = {"contrastive_weight": 1.0, "contrastive_from": 0.5}
    data = examples(48)
    first = make_trainer(tmp_path, epochs=2, **settings)
    scripted_validation(first, monkeypatch, [3.0, 2.9])
    joined = first.fit(data, data[:8]).ranking_step
    assert joined > 0
    resumed = make_trainer(tmp_path, epochs=4, **settings)
    scripted_validation(resumed, monkeypatch, [3.2, 2.8])
    used = recorded_steps(resumed, monkeypatch)
    state = resumed.fit(data, data[:8], resume=True)
    assert state.ranking_step == joined and set(used) == {"ranking"}
    assert state.best_epoch == 4 and state.best_valid_loss == 2.8  # epoch 3 (3.2) not kept


def test_once_the_ranking_loss_joins_validation_weighs_it_as_training_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ranking loss trades likelihood for ranking: in its stage the cross-entropy rises
    as the ranking loss falls. Validated by the cross-entropy alone, epoch 3 (the fewest
    ranking steps) would stay the bundle; the validation loss adds the ranking loss at its
    weight once it trains (3.4 + 3 x 0.4 < 3.2 + 3 x 0.6), so epoch 4 is kept. The history
    keeps both parts; the perplexity stays the cross-entropy's."""
    from nlp.training.trainer import Hooks

    trainer = make_trainer(tmp_path, contrastive_weight=3.0, contrastive_from=0.5, epochs=4)
    measured = iter([3.0, 2.9])
    monkeypatch.setattr(trainer, "evaluate_loss", lambda valid: next(measured))
    assert trainer.evaluate_ranked is not None
    # the sums of the cross-entropy and its tokens, of the ranking loss and its rows
    ranked = iter([[32.0, 10.0, 3.0, 5.0], [34.0, 10.0, 2.0, 5.0]])
    monkeypatch.setattr(trainer.evaluate_ranked, "totals", lambda valid: next(ranked))
    kept: list[int] = []
    data = examples(48)
    state = trainer.fit(data, data[:8], hooks=Hooks(on_improved=lambda s: kept.append(s.epoch)))
    assert kept == [1, 2, 3, 4] and state.best_epoch == 4
    assert state.best_valid_loss == pytest.approx(3.4 + 3 * 0.4)
    third, fourth = state.history[2:]
    assert "valid_ranking" not in state.history[1]
    assert (third["valid_cross_entropy"], third["valid_ranking"]) == (3.2, 0.6)
    assert third["valid_loss"] == pytest.approx(5.0)
    assert fourth["valid_perplexity"] == pytest.approx(math.exp(3.4), rel=1e-4)


def test_the_ranking_loss_is_validated_against_a_fixed_shuffle_of_neighbours(
    tmp_path: Path,
) -> None:
    """In the corpus order a row's neighbour is often the turn before it, whose reply is the
    row's message: the ranked validation batches a seeded shuffle instead, the same at every
    validation, its cross-entropy the same as in the corpus order."""
    from nlp.training.trainer import LossMeter

    trainer = make_trainer(tmp_path, contrastive_weight=1.0)
    assert trainer.evaluate_ranked is not None
    data = examples(40)
    ranked = trainer.evaluate_ranked.totals(data)
    assert trainer.evaluate_ranked.totals(data) == ranked
    in_order = LossMeter(trainer.model, trainer.batching,
                         trainer.objective.validation_ranked_sums).totals(data)
    assert ranked[:2] == pytest.approx(in_order[:2], rel=1e-6)
    assert ranked[2:] != pytest.approx(in_order[2:])
    assert ranked[0] / ranked[1] == pytest.approx(trainer.evaluate_loss(data), rel=1e-6)


STAGED = {"contrastive_weight": 1.0, "contrastive_from": 0.9, "epochs": 10,
          "lr_schedule": "plateau", "learning_rate": 0.01, "patience": 2}


def test_early_stopping_before_the_ranking_loss_joined_brings_its_stage_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train.contrastive_from=0.9` of 10 epochs, patience 2: epochs 3 and 4 lower nothing,
    so early stopping would end the run at 40%, before the ranking loss joined, and the
    bundle would lack it. Instead the weights go back to epoch 2's, the ranking loss joins
    there and trains its share of the run as it ran (a ninth of the steps so far), and the
    run ends inside epoch 5, keeping those weights; resumed, it stays finished."""
    trainer = make_trainer(tmp_path, **STAGED)
    scripted_validation(trainer, monkeypatch, [3.0, 2.9, 3.0, 3.1, 3.4])
    used = recorded_steps(trainer, monkeypatch)
    assert trainer.rewind is not None
    restore, rewinds = trainer.rewind.restore, []
    monkeypatch.setattr(trainer.rewind, "restore", lambda: (rewinds.append(1), restore())[1])
    data = examples(48)
    state = trainer.fit(data, data[:8])
    joined = state.ranking_step
    per_epoch, stage = joined // 4, math.ceil(joined / 9)
    assert joined == 4 * per_epoch and state.epoch == 4 and stage < per_epoch
    assert used == ["likelihood"] * joined + ["ranking"] * stage
    assert len(rewinds) == 2  # after epoch 3 (the plateau's) and before the stage
    assert state.finished and state.global_step == state.ranking_until == joined + stage
    assert state.history[-1]["partial_epoch"] and state.best_valid_loss == 3.4
    assert state.best_epoch == pytest.approx(4 + stage / per_epoch, abs=1e-3)

    again = make_trainer(tmp_path, **STAGED)
    scripted_validation(again, monkeypatch, [])
    more = recorded_steps(again, monkeypatch)
    assert again.fit(data, data[:8], resume=True).global_step == state.global_step
    assert more == []


def test_a_ranking_stage_brought_forward_resumes_to_the_same_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed two steps into a ranking stage that early stopping brought forward, a resumed
    run trains the rest of that stage (its end is in the checkpoint) and no more."""
    data = examples(48)
    straight = make_trainer(tmp_path / "straight", **STAGED)
    scripted_validation(straight, monkeypatch, [3.0, 2.9, 3.0, 3.1, 3.4])
    end = straight.fit(data, data[:8])

    cut = make_trainer(tmp_path / "cut", **STAGED, checkpoint_every=1)
    scripted_validation(cut, monkeypatch, [3.0, 2.9, 3.0, 3.1])
    compiled = cut.train_batch
    ranked: list[int] = []

    def dies(*batch: tf.Tensor) -> tf.Tensor:
        if len(ranked) == 2:
            raise KeyboardInterrupt
        ranked.append(1)
        return compiled(*batch)

    monkeypatch.setattr(cut, "train_batch", dies)
    with pytest.raises(KeyboardInterrupt):
        cut.fit(data, data[:8])
    resumed = make_trainer(tmp_path / "cut", **STAGED, checkpoint_every=1)
    scripted_validation(resumed, monkeypatch, [3.4])
    used = recorded_steps(resumed, monkeypatch)
    state = resumed.fit(data, data[:8], resume=True)
    assert used == ["ranking"] * (end.global_step - end.ranking_step - 2)
    assert (state.global_step, state.ranking_until) == (end.global_step, end.ranking_until)
    assert state.finished and state.best_valid_loss == 3.4


def test_a_run_resumed_out_of_patience_before_its_ranking_stage_trains_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint that early stopping ended before the ranking loss joined (an older
    version's, or here one resumed with less patience) trains the stage on resume: the
    same steps as the run that had that patience throughout."""
    from nlp.training.checkpoint import read_state

    data = examples(48)
    first = make_trainer(tmp_path, **{**STAGED, "patience": 3})
    scripted_validation(first, monkeypatch, [3.0, 2.9, 3.0, 3.1])  # none for epoch 5: ends
    with pytest.raises(StopIteration):
        first.fit(data, data[:8])
    stalled = read_state(tmp_path / "checkpoint")  # saved after epoch 4
    assert (stalled.epoch, stalled.bad_epochs, stalled.ranking_step) == (4, 2, -1)
    resumed = make_trainer(tmp_path, **STAGED)
    scripted_validation(resumed, monkeypatch, [3.4])
    used = recorded_steps(resumed, monkeypatch)
    state = resumed.fit(data, data[:8], resume=True)
    stage = math.ceil(stalled.global_step / 9)
    assert state.ranking_step == stalled.global_step and used == ["ranking"] * stage
    assert state.finished and state.global_step == state.ranking_until
    assert state.history[-1]["partial_epoch"] and state.best_valid_loss == 3.4


def test_a_resumed_run_rewinds_as_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rewind copies are in the checkpoint: stopped after epoch 2 and resumed, a run whose
    epoch 3 stalls goes back to epoch 2's weights and ends where the straight run ends."""
    data = examples(48)
    settings = {"lr_schedule": "plateau", "learning_rate": 0.01, "patience": 3}
    straight = make_trainer(tmp_path / "straight", epochs=4, **settings)
    scripted_validation(straight, monkeypatch, [3.0, 2.9, 2.95, 2.8])
    straight.fit(data, data[:8])
    first = make_trainer(tmp_path / "cut", epochs=2, **settings)
    scripted_validation(first, monkeypatch, [3.0, 2.9])
    first.fit(data, data[:8])
    resumed = make_trainer(tmp_path / "cut", epochs=4, **settings)
    scripted_validation(resumed, monkeypatch, [2.95, 2.8])
    state = resumed.fit(data, data[:8], resume=True)
    assert state.epoch == 4 and state.lowest_epoch == 4
    for a, b in zip(straight.model.weights, resumed.model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_constant_schedule_keeps_the_rate(tmp_path: Path) -> None:
    from nlp.training.trainer import Hooks, Selection

    scores = iter([0.3, 0.2])
    trainer = make_trainer(tmp_path, learning_rate=0.01, epochs=2, patience=3)
    data = examples(48)
    trainer.fit(data, data[:8], hooks=Hooks(selection=Selection("rouge", lambda: next(scores))))
    assert float(trainer.optimizer.learning_rate.numpy()) == pytest.approx(0.01)


def test_embedding_rows_get_adams_update_of_their_summed_gradient(tmp_path: Path) -> None:
    """Tokens repeated in a batch: the first Adam step moves every weight, embedding rows
    included, by about lr * sign(g) with g the summed gradient. (Keras 3's Adam on the
    sparse embedding gradient summed each repeat's squared gradient into the second moment,
    which moved the row of a token seen n times by up to sqrt(n) times more.)"""
    from nlp.model.losses import masked_mean_loss

    trainer = make_trainer(tmp_path, learning_rate=0.01, clip_norm=0)
    model = trainer.model
    source = tf.constant([[5, 5, 5, 6, 7]], tf.int32)
    target_in = tf.constant([[1, 8, 8, 9]], tf.int32)
    target_out = tf.constant([[8, 8, 9, 2]], tf.int32)
    with tf.GradientTape() as tape:
        outputs = model.teacher_forcing(source, target_in, training=True)
        loss = masked_mean_loss(outputs, target_out, model.config.vocab_size, 0.0, 0.0)
    variables = model.trainable_variables
    gradients = tape.gradient(loss, variables)
    assert any(isinstance(g, tf.IndexedSlices) for g in gradients)  # the embeddings'
    before = [v.numpy() for v in variables]
    trainer.train_batch(source, target_in, target_out)
    epsilon = trainer.optimizer.epsilon
    # Keras's Adam: step 1 moves by lr * g / (|g| + eps / sqrt(1 - beta_2))
    damping = epsilon / (1 - trainer.optimizer.beta_2) ** 0.5
    for variable, old, gradient in zip(variables, before, gradients, strict=True):
        g = tf.convert_to_tensor(gradient).numpy()
        clear = abs(g) > 100 * epsilon  # elsewhere eps and round-off decide the step's size
        expected = old - 0.01 * g / (abs(g) + damping)
        assert (abs(variable.numpy() - expected) * clear).max() < 1e-6, variable.path
    row = next(i for i, v in enumerate(variables) if v is model.source_embedding.embeddings)
    repeated = tf.convert_to_tensor(gradients[row]).numpy()[5]
    assert (abs(repeated) > 100 * epsilon).any()  # token 5's row was among those checked


def test_compiled_update_is_one_program_for_every_batch_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train.jit_optimizer`: the XLA update takes dense gradients of the weights' own shapes
    (a sparse embedding gradient, one row per batch token, made XLA compile a program for
    every batch shape), and trains the same weights as the plain update."""
    from nlp.training import trainer as trainer_module

    data = examples(64)
    plain = make_trainer(tmp_path / "plain", jit_optimizer=False)
    plain.fit(data, data[:8])
    monkeypatch.setattr(trainer_module, "XLA_UPDATE_MIN_WEIGHTS", 0)
    compiled = make_trainer(tmp_path / "xla", jit_optimizer=True)
    specs = compiled.update.input_signature[0]
    assert [s.shape for s in specs] == [v.shape for v in compiled.model.trainable_variables]
    assert all(s.shape.is_fully_defined() for s in specs)
    compiled.fit(data, data[:8])
    assert compiled.update.experimental_get_tracing_count() == 1
    pairs = zip(plain.model.trainable_variables, compiled.model.trainable_variables, strict=True)
    for a, b in pairs:
        assert float(tf.reduce_max(tf.abs(a - b))) < 1e-5


class StepClock:
    """A stand-in for `nlp.training.clock`'s `time` module whose clock moves one minute per
    call: the budget runs out after a number of steps fixed by the loop's own calls, not by
    the machine."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 60.0
        return self.now


def test_a_run_stopped_by_its_time_budget_resumes_as_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train.max_minutes` stops mid-epoch at an exact batch: the checkpoint holds that
    position (no epoch count, no plateau rewind or halving of a partial epoch), the part-epoch
    is validated but, worse than the best epoch, not kept, and `--resume` with a larger
    budget ends with the weights and optimizer state of a run never stopped."""
    from nlp.training import clock
    from nlp.training.data import EncodedExamples
    from nlp.training.trainer import Hooks

    data = examples(48)
    settings = {"lr_schedule": "plateau", "learning_rate": 0.01, "patience": 3, "epochs": 3}
    losses = [3.0, 3.1, 2.9]  # epoch 2 stalls: rewind and halve after it, not before

    def everything(trainer: Trainer) -> list[np.ndarray]:
        return [v.numpy() for v in [*trainer.model.weights, *trainer.optimizer.variables]]

    straight = make_trainer(tmp_path / "straight", **settings)
    scripted_validation(straight, monkeypatch, list(losses))
    straight_state = straight.fit(data, data[:8])

    monkeypatch.setattr(clock, "time", StepClock())
    saved: list[int] = []
    cut = make_trainer(tmp_path / "cut", max_minutes=15, **settings)
    scripted_validation(cut, monkeypatch, [3.0, 3.05])  # epoch 1, then the part of epoch 2
    state = cut.fit(data, data[:8], hooks=Hooks(on_improved=lambda s: saved.append(s.epoch)))
    epoch_length = len(EncodedExamples(data).plan(cut.batching, seed=cut.config.seed, epoch=1))
    assert state.finished and state.epoch == 1 and 0 < state.step_in_epoch < epoch_length
    assert saved == [1] and state.best_epoch == 1  # the worse part-epoch was not kept
    assert [r.get("partial_epoch", False) for r in state.history] == [False, True]
    assert 1 < state.history[-1]["epoch"] < 2
    assert float(cut.optimizer.learning_rate.numpy()) == pytest.approx(0.01)
    monkeypatch.undo()

    resumed = make_trainer(tmp_path / "cut", **settings)
    scripted_validation(resumed, monkeypatch, losses[1:])
    final = resumed.fit(data, data[:8], resume=True)
    assert final.epoch == 3 and final.global_step == straight_state.global_step
    for a, b in zip(everything(straight), everything(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_budget_that_ends_inside_the_first_epoch_still_leaves_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large corpus on a slow machine: the budget runs out before the first epoch ends.
    The model as it stands is validated and saved (recorded as part of an epoch), and the run
    still resumes from the exact batch as if never stopped."""
    from nlp.training import clock
    from nlp.training.data import EncodedExamples
    from nlp.training.trainer import Hooks

    data = examples(48)
    settings = {"learning_rate": 0.01, "epochs": 2}

    def everything(trainer: Trainer) -> list[np.ndarray]:
        return [v.numpy() for v in [*trainer.model.weights, *trainer.optimizer.variables]]

    straight = make_trainer(tmp_path / "straight", **settings)
    scripted_validation(straight, monkeypatch, [3.0, 2.9])
    straight_state = straight.fit(data, data[:8])

    monkeypatch.setattr(clock, "time", StepClock())
    saved: list[dict] = []
    cut = make_trainer(tmp_path / "cut", max_minutes=2, **settings)
    scripted_validation(cut, monkeypatch, [3.5])
    state = cut.fit(data, data[:8],
                    hooks=Hooks(on_improved=lambda s: saved.append(dict(s.history[-1]))))
    epoch_length = len(EncodedExamples(data).plan(cut.batching, seed=cut.config.seed, epoch=0))
    assert state.epoch == 0 and 0 < state.step_in_epoch < epoch_length  # not counted
    assert 0 < state.best_epoch < 1 and state.best_valid_loss == 3.5
    assert len(saved) == 1 and saved[0]["partial_epoch"] is True
    assert saved[0]["valid_loss"] == 3.5 and 0 < saved[0]["epoch"] < 1
    monkeypatch.undo()

    resumed = make_trainer(tmp_path / "cut", **settings)
    scripted_validation(resumed, monkeypatch, [3.0, 2.9])
    final = resumed.fit(data, data[:8], resume=True)
    assert final.epoch == 2 and final.global_step == straight_state.global_step
    assert final.best_valid_loss == 2.9  # the complete epochs replaced the partial model
    for a, b in zip(everything(straight), everything(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_part_epoch_that_validates_better_is_the_bundle_and_resume_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget ends inside epoch 2 and the weights as they stand validate better than
    epoch 1: the bundle takes them (the history says part-epoch, the best epoch has its
    fraction). Early stopping still compares with complete epochs only: under a selection
    score and patience 1, a resumed run whose next epoch beats epoch 1 but not the kept
    part-epoch goes on, as the uninterrupted run did, to the same weights."""
    from nlp.training import clock
    from nlp.training.trainer import Hooks, Selection

    data = examples(48)
    settings = {"learning_rate": 0.01, "patience": 1, "epochs": 3}

    def everything(trainer: Trainer) -> list[np.ndarray]:
        return [v.numpy() for v in [*trainer.model.weights, *trainer.optimizer.variables]]

    def scores(values: list[float]) -> Selection:
        remaining = iter(values)
        return Selection("rouge", lambda: next(remaining))

    losses, rouge = [3.0, 3.1, 3.2], [0.30, 0.35, 0.40]  # the loss never lowers after epoch 1
    straight = make_trainer(tmp_path / "straight", **settings)
    scripted_validation(straight, monkeypatch, list(losses))
    straight_state = straight.fit(data, data[:8], hooks=Hooks(selection=scores(rouge)))
    assert straight_state.epoch == 3  # every epoch improved the score: no early stop

    monkeypatch.setattr(clock, "time", StepClock())
    saved: list[dict] = []
    cut = make_trainer(tmp_path / "cut", max_minutes=15, **settings)
    scripted_validation(cut, monkeypatch, [3.0, 3.05])
    state = cut.fit(data, data[:8], hooks=Hooks(
        on_improved=lambda s: saved.append(dict(s.history[-1])),
        selection=scores([0.30, 0.50]),  # epoch 1, then the part of epoch 2: better
    ))
    assert len(saved) == 2 and saved[0]["epoch"] == 1 and saved[1]["partial_epoch"] is True
    assert 1 < saved[1]["epoch"] < 2 and state.best_epoch == saved[1]["epoch"]
    assert state.best_score == 0.5 and state.epoch == 1
    monkeypatch.undo()

    resumed = make_trainer(tmp_path / "cut", **settings)
    scripted_validation(resumed, monkeypatch, losses[1:])
    again: list[float] = []
    final = resumed.fit(data, data[:8], resume=True, hooks=Hooks(
        on_improved=lambda s: again.append(s.best_score), selection=scores(rouge[1:])))
    assert final.epoch == 3 and final.global_step == straight_state.global_step
    assert again == [] and final.best_score == 0.5  # epochs 2 and 3 stayed below the part
    for a, b in zip(everything(straight), everything(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


def test_linear_schedule_falls_to_zero_where_the_budget_ends(tmp_path: Path) -> None:
    """`train.lr_schedule=linear`: each step's rate is learning_rate x (1 - the share of the
    budget used before it), the budget being train.epochs' batches (or train.max_minutes,
    whichever ends first); the last of G steps trains at learning_rate / G."""
    from nlp.training.trainer import Hooks, Selection

    trainer = make_trainer(tmp_path, lr_schedule="linear", learning_rate=0.01, epochs=3,
                           patience=5, select_by="last")
    rates: list[tuple[int, float]] = []

    def score() -> float:  # called once an epoch, after its last step
        rates.append((trainer.optimizer.iterations.numpy().item(),
                      float(trainer.optimizer.learning_rate.numpy())))
        return 0.0

    data = examples(48)
    state = trainer.fit(data, data[:8], hooks=Hooks(selection=Selection("rouge", score)))
    steps = state.global_step
    assert state.epoch == 3 and steps % 3 == 0
    per_epoch = steps // 3
    assert [step for step, _ in rates] == [per_epoch, 2 * per_epoch, steps]
    # the rate of each epoch's last step: 0.01 x (1 - (step - 1) / steps)
    assert [rate for _, rate in rates] == pytest.approx(
        [0.01 * (1 - (step - 1) / steps) for step, _ in rates]
    )
    assert rates[-1][1] == pytest.approx(0.01 / steps)


def test_linear_schedule_follows_the_time_budget_and_the_warm_up() -> None:
    """The share of the budget used is the larger of the minutes' and the batches'; the
    warm-up multiplies the rate by (step + 1) / warmup_steps until it reaches 1."""
    from nlp.training.optim import linear_rate, run_progress
    from nlp.util.config import TrainConfig

    config = TrainConfig(learning_rate=0.002, epochs=10, max_minutes=2.0, warmup_steps=4)
    assert run_progress(config, train_seconds=30.0, step=5, epoch_batches=100) == 0.25
    assert run_progress(config, train_seconds=30.0, step=500, epoch_batches=100) == 0.5
    assert run_progress(config, train_seconds=600.0, step=5, epoch_batches=100) == 1.0
    assert linear_rate(config, 0.25, step=1) == pytest.approx(0.002 * 0.5 * 0.75)
    assert linear_rate(config, 0.25, step=3) == pytest.approx(0.002 * 0.75)
    assert linear_rate(config, 1.0, step=100) == 0.0
    untimed = TrainConfig(epochs=2, max_minutes=0.0)
    assert run_progress(untimed, train_seconds=1e6, step=50, epoch_batches=100) == 0.25


@pytest.mark.parametrize("schedule", ["constant", "plateau"])
def test_a_warm_up_raises_the_rate_linearly_then_holds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schedule: str
) -> None:
    """`train.warmup_steps` under the schedules the trainer steps itself: step k of the first
    N takes (k + 1) / N of the rate, every later step the full rate (before, the setting
    was silently ignored there)."""
    from nlp.training.optim import current_rate

    trainer = make_trainer(tmp_path, lr_schedule=schedule, learning_rate=0.01, warmup_steps=4)
    rates: list[float] = []
    original = trainer.train_batch

    def recording(*batch):  # type: ignore[no-untyped-def]
        rates.append(current_rate(trainer.optimizer))
        return original(*batch)

    monkeypatch.setattr(trainer, "train_batch", recording)
    data = examples(160)
    trainer.fit(data, data[:16])
    assert len(rates) > 6
    assert rates[:5] == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01])
    assert rates[5:] == pytest.approx([0.01] * (len(rates) - 5))


def test_a_warm_up_the_schedule_cannot_do_is_refused() -> None:
    from nlp.training.optim import check_schedule

    config = ExperimentConfig().with_overrides(
        ["train.lr_schedule=exponential", "train.warmup_steps=10"]).train
    with pytest.raises(ValueError, match="exponential schedule has no warm-up"):
        check_schedule(config)
