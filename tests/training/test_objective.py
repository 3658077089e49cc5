"""The training objective's options: the kept language-model losses add their mean times the
stated weight, and scheduled sampling at probability 0 is teacher forcing exactly, through
the trainer's compiled step too."""

from __future__ import annotations

import random
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlp.model import Seq2Seq
from nlp.model.language_models import EncoderLMHeads
from nlp.tokenizers.specials import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from nlp.training.data import EncodedExamples
from nlp.training.objective import Objective, sampling_probability
from nlp.training.trainer import Trainer
from nlp.util.config import ModelConfig, TrainConfig

VOCAB = 30


def batch(seed: int = 0, size: int = 6) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    rng = random.Random(seed)
    examples = [
        ([rng.randrange(4, VOCAB) for _ in range(rng.randint(2, 9))],
         [*(rng.randrange(4, VOCAB) for _ in range(rng.randint(2, 8))), EOS_ID])
        for _ in range(size)
    ]
    source, target_in, target_out = EncodedExamples(examples).batch(np.arange(size))
    return tf.constant(source), tf.constant(target_in), tf.constant(target_out)


def model(dropout: float = 0.0, **settings: object) -> Seq2Seq:
    keras.utils.set_random_seed(3)
    return Seq2Seq(
        ModelConfig(vocab_size=VOCAB, embedding_dim=8, units=8, dropout=dropout, **settings)
    )


def test_the_language_model_losses_add_their_mean_times_the_weight() -> None:
    network = model()
    heads = EncoderLMHeads(network.config)
    source, target_in, target_out = batch()
    step = tf.constant(0, tf.int64)
    plain = float(Objective(network, TrainConfig()).loss(source, target_in, target_out, step))
    weighted = Objective(network, TrainConfig(lm_loss_weight=0.4), heads)
    _, _, first = network.encode_with_first_layer(source)
    lm = float(weighted.lm_loss(source, target_in, target_out, first, training=False))
    assert lm > 1.0  # an untrained language model: about log(30) a token
    total = float(weighted.loss(source, target_in, target_out, step))
    assert total == pytest.approx(plain + 0.4 * lm, rel=1e-6)
    assert weighted.layers == {"encoder_lm_heads": heads}
    assert Objective(network, TrainConfig()).layers == {}


def test_the_encoder_language_models_read_only_what_comes_before_or_after() -> None:
    """The forward direction's loss at a token does not change when a later token does, and
    the backward one's when an earlier token does: neither sees the token it predicts."""
    from nlp.model.language_models import encoder_lm_sums

    network = model()
    heads = EncoderLMHeads(network.config)
    source = tf.constant([[5, 6, 7, 8, 9]])
    changed = tf.constant([[5, 6, 7, 8, 20]])  # only the last token differs

    def forward_logits(ids: tf.Tensor) -> np.ndarray:
        _, _, first = network.encode_with_first_layer(ids)
        return np.asarray(heads.forward(first[:, :-1, :4]))

    def backward_logits(ids: tf.Tensor) -> np.ndarray:
        _, _, first = network.encode_with_first_layer(ids)
        return np.asarray(heads.backward(first[:, 1:, 4:]))

    np.testing.assert_array_equal(forward_logits(source), forward_logits(changed))
    assert not np.array_equal(backward_logits(source), backward_logits(changed))
    earlier = tf.constant([[20, 6, 7, 8, 9]])  # only the first token differs
    np.testing.assert_array_equal(backward_logits(source), backward_logits(earlier))
    _, _, first = network.encode_with_first_layer(source)
    total, count = encoder_lm_sums(network, heads, source, first)
    assert float(count) == 8.0 and float(total) > 0  # 4 next and 4 previous tokens


def test_sampling_schedules() -> None:
    linear = TrainConfig(scheduled_sampling="linear", sampling_steps=100, sampling_max=0.5)
    assert [float(sampling_probability(linear, s)) for s in (0, 50, 100, 900)] == pytest.approx(
        [0.0, 0.25, 0.5, 0.5]
    )
    sigmoid = TrainConfig(scheduled_sampling="inverse_sigmoid", sampling_steps=10,
                          sampling_max=1.0)
    for step in (0, 23, 60):
        assert float(sampling_probability(sigmoid, step)) == pytest.approx(
            1 - 10 / (10 + np.exp(step / 10)), rel=1e-5
        )
    assert float(sampling_probability(TrainConfig(), 10_000)) == 0.0
    with pytest.raises(ValueError, match=r"train\.scheduled_sampling"):
        Objective(model(), TrainConfig(scheduled_sampling="sometimes"))


def test_scheduled_sampling_at_probability_zero_is_teacher_forcing_exactly() -> None:
    """With dropout on: the prediction pass draws no dropout mask, so the trained pass draws
    the masks plain teacher forcing draws; at a probability above zero inputs change."""
    network = model(dropout=0.3)
    source, target_in, target_out = batch()
    seeds = network.dropout.seed_generator.state
    start = seeds.numpy()
    plain = Objective(network, TrainConfig()).loss(source, target_in, target_out, 0)
    seeds.assign(start)
    sampling = Objective(
        network, TrainConfig(scheduled_sampling="linear", sampling_steps=10, sampling_max=0.9)
    )
    at_zero = sampling.loss(source, target_in, target_out, tf.constant(0, tf.int64))
    assert float(at_zero) == float(plain)  # bit for bit

    state, context = network.encode(source)
    mixed = np.asarray(sampling.sampled_inputs(state, context, target_in, 10))
    gold = np.asarray(target_in)
    assert (mixed[:, 0] == BOS_ID).all()
    assert ((mixed == PAD_ID) == (gold == PAD_ID)).all()  # padding stays padding
    replaced = (mixed != gold).mean()
    assert 0.3 < replaced < 0.95  # most of the 0.9 draws replace (a draw may equal the gold)
    assert not np.isin(mixed[:, 1:][gold[:, 1:] != PAD_ID], [PAD_ID, BOS_ID]).any()
    again = np.asarray(sampling.sampled_inputs(state, context, target_in, 10))
    np.testing.assert_array_equal(mixed, again)  # seeded by train.seed and the step
    seeds.assign(start)
    later = sampling.loss(source, target_in, target_out, tf.constant(10, tf.int64))
    assert float(later) != float(plain)


def test_target_word_dropout_hides_reply_words_never_the_start_or_padding() -> None:
    """Each decoder input after the start token that is not padding is read as <unk> with
    the stated probability, the same draws for the same step and others for the next; the
    loss differs from teacher forcing, and at 0 the option is off."""
    source, target_in, target_out = batch(size=200)
    dropping = Objective(model(), TrainConfig(target_word_dropout=0.25))
    dropped = np.asarray(dropping.dropped_inputs(target_in, tf.constant(7, tf.int64)))
    gold = np.asarray(target_in)
    assert (dropped[:, 0] == BOS_ID).all()
    assert ((dropped == PAD_ID) == (gold == PAD_ID)).all()
    words = gold[:, 1:] != PAD_ID
    hidden = dropped[:, 1:][words] != gold[:, 1:][words]
    assert (dropped[:, 1:][words][hidden] == UNK_ID).all()
    assert 0.2 < float(hidden.mean()) < 0.3  # of about 900 words
    again = np.asarray(dropping.dropped_inputs(target_in, tf.constant(7, tf.int64)))
    np.testing.assert_array_equal(dropped, again)
    later = np.asarray(dropping.dropped_inputs(target_in, tf.constant(8, tf.int64)))
    assert not np.array_equal(dropped, later)
    step = tf.constant(7, tf.int64)
    plain = float(Objective(dropping.model, TrainConfig()).loss(source, target_in, target_out,
                                                                step))
    assert float(dropping.loss(source, target_in, target_out, step)) != plain
    with pytest.raises(ValueError, match=r"train\.target_word_dropout must be in \[0, 1\)"):
        Objective(model(), TrainConfig(target_word_dropout=1.0))


def test_the_contrastive_loss_is_the_mean_margin_shortfall_over_distinct_neighbours() -> None:
    """train.contrastive_weight adds weight x mean over rows of max(0, margin - (the previous
    row's reply's mean token loss - the row's own)), both given the row's message, hand-
    computed here from the model's exact log-probabilities; a row whose neighbour has the
    same reply is left out; 0 is the plain loss; negative settings are refused. Validation
    sums the same margin shortfalls."""
    network = model()
    source, target_in, target_out = batch(size=5)
    # row 3 gets row 2's reply: its neighbour's reply is its own, so it is left out
    target_in = tf.tensor_scatter_nd_update(target_in, [[3]], target_in[2:3])
    target_out = tf.tensor_scatter_nd_update(target_out, [[3]], target_out[2:3])
    step = tf.constant(0, tf.int64)
    plain = float(Objective(network, TrainConfig()).loss(source, target_in, target_out, step))
    state, context = network.encode(source)

    def mean_nll(t_in: tf.Tensor, t_out: tf.Tensor) -> np.ndarray:
        logits = network.teacher_forcing_encoded(state, context, t_in).logits
        log_probs = np.asarray(tf.nn.log_softmax(tf.cast(logits, tf.float32)))
        gold = np.asarray(t_out)
        picked = np.take_along_axis(log_probs, gold[..., None], axis=-1)[..., 0]
        real = gold != PAD_ID
        return -(picked * real).sum(axis=1) / real.sum(axis=1)

    own = mean_nll(target_in, target_out)
    other = mean_nll(np.roll(target_in, 1, axis=0), np.roll(target_out, 1, axis=0))
    gaps = np.maximum(0.0, 2.0 - (other - own))
    kept = [0, 1, 2, 4]
    assert gaps[kept].max() > 0  # an untrained model: replies all about equally likely
    contrast = float(gaps[kept].mean())
    config = TrainConfig(contrastive_weight=0.5, contrastive_margin=2.0)
    total = float(Objective(network, config).loss(source, target_in, target_out, step))
    assert total == pytest.approx(plain + 0.5 * contrast, rel=1e-5)
    # the validation of a run that trains it: the same sums, without dropout or sampling
    ce_sum, tokens, ranking_sum, rows = (
        float(x) for x in Objective(network, config).validation_ranked_sums(
            source, target_in, target_out))
    assert (ce_sum, tokens) == pytest.approx(
        [float(x) for x in Objective(network, config).validation_sums(
            source, target_in, target_out)], rel=1e-6)
    assert (ranking_sum, rows) == pytest.approx((float(gaps[kept].sum()), 4.0), rel=1e-5)
    off = TrainConfig(contrastive_weight=0.0, contrastive_margin=2.0)
    assert float(Objective(network, off).loss(source, target_in, target_out, step)) == plain
    with pytest.raises(ValueError, match=r"train\.contrastive_weight and "):
        Objective(network, TrainConfig(contrastive_weight=-1.0))
    # before train.contrastive_from the trainer asks for the likelihood alone
    alone = Objective(network, config).loss(source, target_in, target_out, step, ranking=False)
    assert float(alone) == plain
    for share in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"train\.contrastive_from must be in \[0, 1\)"):
            Objective(network, TrainConfig(contrastive_weight=1.0, contrastive_from=share))


def test_the_ranking_loss_reads_the_neighbour_as_the_own_reply_was_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With word dropout the own reply's loss came from the dropped decoder inputs and the
    neighbour's from clean ones, an unlike pair: the neighbour now reads the dropped inputs
    of its row; and a copying model's ranking loss is refused (a copied word's id names a
    position of its own row's source)."""
    network = model()
    source, target_in, target_out = batch(size=4)
    read: list[np.ndarray] = []
    original = Objective.token_terms

    def spy(self: Objective, state: object, context: object, inputs: tf.Tensor,
            *args: object) -> object:
        read.append(np.asarray(inputs))
        return original(self, state, context, inputs, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Objective, "token_terms", spy)
    config = TrainConfig(contrastive_weight=1.0, target_word_dropout=0.5)
    Objective(network, config).loss(source, target_in, target_out, tf.constant(3, tf.int64))
    own, neighbour = read
    assert not np.array_equal(own, np.asarray(target_in))  # words were dropped
    assert np.array_equal(neighbour, np.roll(own, 1, axis=0))
    copying = model(copy=True)
    with pytest.raises(ValueError, match=r"contrastive_weight needs model\.copy=false"):
        Objective(copying, TrainConfig(contrastive_weight=1.0))


def test_each_draw_of_a_step_has_a_stream_of_its_own() -> None:
    """The sampled softmax's words, scheduled sampling's predictions and coins and word
    dropout's coins are seeded apart at every step (alike seeds give alike numbers: the coins
    once began with the very numbers that drew the sampled words), and the same again for
    the same step (a resumed run draws what the uninterrupted one did)."""
    from nlp.training.objective import DRAWS, draw_seed

    seeds = [tuple(np.asarray(draw_seed(5, tf.constant(step, tf.int64), draw)))
             for step in range(200) for draw in DRAWS]
    assert len(set(seeds)) == len(seeds)
    assert all(seed[0] == 5 for seed in seeds)
    step = tf.constant(7, tf.int64)
    firsts = [np.asarray(tf.random.stateless_uniform([8], seed=draw_seed(5, step, draw)))
              for draw in DRAWS]
    assert len({tuple(first) for first in firsts}) == len(DRAWS)
    np.testing.assert_array_equal(
        draw_seed(5, step, "sampling_coins"), draw_seed(5, tf.constant(7, tf.int64),
                                                        "sampling_coins"))


@pytest.mark.slow
def test_the_options_train_through_the_trainers_compiled_step(tmp_path: Path) -> None:
    """Scheduled sampling with a ceiling of 0 trains exactly as teacher forcing; with a ceiling
    of 1 it trains other weights; the kept language-model losses train the heads too, and
    the checkpoint holds them."""
    from nlp.training.checkpoint import load_checkpoint

    rng = random.Random(1)
    data = [
        ([rng.randrange(4, VOCAB) for _ in range(rng.randint(2, 9))],
         [*(rng.randrange(4, VOCAB) for _ in range(rng.randint(2, 8))), EOS_ID])
        for _ in range(32)
    ]

    def fit(name: str, **train: object) -> Trainer:
        config = TrainConfig(batch_size=8, epochs=1, bucket_width=4, **train)  # type: ignore[arg-type]
        trainer = Trainer(model(dropout=0.2), config, tmp_path / name, verbose=0)
        trainer.fit(data, data[:8])
        return trainer

    plain = fit("plain")
    zero = fit("zero", scheduled_sampling="linear", sampling_steps=1, sampling_max=0.0)
    full = fit("full", scheduled_sampling="linear", sampling_steps=1, sampling_max=1.0)
    for a, b in zip(plain.model.weights, zero.model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert any(
        not np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(plain.model.trainable_weights, full.model.trainable_weights, strict=True)
    )
    for name, option in (("hiding", {"target_word_dropout": 0.5}),
                         ("ranking", {"contrastive_weight": 1.0}),
                         ("ranking-sampled", {"contrastive_weight": 1.0, "sampled_softmax": 8})):
        changed = fit(name, **option)
        assert any(
            not np.array_equal(a.numpy(), b.numpy())
            for a, b in zip(plain.model.trainable_weights, changed.model.trainable_weights,
                            strict=True)
        )
    with_lm = fit("lm", lm_loss_weight=0.5)
    heads = with_lm.objective.heads
    assert heads is not None
    trained = [v.numpy() for v in heads.weights]
    fresh = EncoderLMHeads(with_lm.model.config)
    assert not np.array_equal(trained[0], np.zeros_like(trained[0]))
    assert not np.array_equal(trained[1], fresh.weights[1].numpy())  # biases moved from zero
    restored = Trainer(model(dropout=0.2), with_lm.config, tmp_path / "lm", verbose=0)
    load_checkpoint(
        tmp_path / "lm" / "checkpoint", restored.model, restored.optimizer,
        restored.checkpoint_extras,
    )
    assert restored.objective.heads is not None
    for a, b in zip(heads.weights, restored.objective.heads.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
