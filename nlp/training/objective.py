"""What a training step minimises: the seq2seq loss, and its options.

- **Scheduled sampling** (Bengio et al. 2015; `train.scheduled_sampling`): each decoder input
  after the first is, with a probability that grows over training, the model's own sampled
  prediction instead of the reference token, so the decoder learns to go on from its own
  mistakes (the exposure bias behind stuttering and drifting outputs). It runs in two passes
  of the same compiled step (the form of Mihaylova & Martins 2019 and Duckworth et al. 2019):
  a teacher-forced pass without dropout or gradient gives every position's prediction, a
  seeded draw decides which inputs it replaces, and the trained pass reads the mixed inputs.
  Bengio et al. feed each prediction as soon as it is made, one step at a time; here a
  prediction is made from the reference prefix, which keeps the model's fast whole-sequence
  loops (and its written-out gradients) for the trained pass. The draws are stateless,
  seeded by `train.seed` and the step, so a resumed run draws what the uninterrupted one did,
  and a probability of 0 trains exactly as teacher forcing.
- **The language-model losses kept** (Ramachandran et al. 2017; `train.lm_loss_weight`):
  the encoder's two first-layer directions and the decoder without a source go on predicting
  the next token of the batch's own sources and targets (`nlp.model.language_models`); their
  mean token loss, times the weight, is added to the seq2seq loss.
- **Target-side word dropout** (Bowman et al. 2016; `train.target_word_dropout`): each
  decoder input after the first is read as `<unk>` with this probability. Why: a decoder that
  always sees the reply's own previous words can predict most of them as a language model
  would and learn little from the message; with some of them hidden, the message is what is
  left to read. Off by default: on the chat recipe it did not rank true replies measurably
  better (docs/BENCHMARKS.md, "Target-side word dropout"). Validation, scoring and decoding
  read every word. The draws are stateless, seeded by `train.seed` and the step
  (a stream of their own), so a resumed run draws what the uninterrupted one did.
- **A ranking loss beside the likelihood** (`train.contrastive_weight`, `contrastive_loss`):
  each reply's mean token loss given its message must be `train.contrastive_margin` below that
  of the batch's neighbouring reply. Set by the chat-en recipe, where it ranked true replies
  first more often and its replies rated more sensible (docs/BENCHMARKS.md, "A ranking loss
  beside the likelihood"); not in the chat preset, unmeasured elsewhere. While it trains,
  validation adds it too (`validation_ranked_sums`): it trades likelihood for ranking, so the
  cross-entropy alone would prefer the weights that trained it least.
- **Inverse token frequency** (Nakamura et al. 2019; `train.itf_power`): each target token's
  loss is weighted by its word's training-target count to the power -p
  (`inverse_frequency_weights`), so the frequent words of generic replies teach less and the
  rarer words a specific reply needs teach more. Validation stays unweighted: the epoch kept
  is the one whose model predicts held-out replies best, as without the weights.

- **Vocabulary unlikelihood** (Li et al. 2020; `train.unlikelihood_weight`,
  `nlp.model.losses.overused_unlikelihood`): the words the model predicts more often than
  the batch's replies hold them are made less likely where the reply says something else,
  weighted by how over-used they are; the mean penalty over penalised positions, times the
  weight, is added. Why: the generic replies beam search finds are made of the words the
  argmax over-uses; likelihood alone does not see the mismatch. With the model's argmax (the
  default) it made no chat-en reply more specific or more sensible, and a large weight from
  scratch outweighs the likelihood (docs/BENCHMARKS.md, "Vocabulary unlikelihood"). With
  `train.unlikelihood_pick=sampled` it penalises the sampled softmax's own argmax instead
  (mostly rare words drawn; `overused_unlikelihood` says why): the chat-en recipe sets that,
  at weight 10, for the lower perplexity and better ranking it learns in the same minutes. Off
  in the presets (the chat-zh recipe's exact softmax has no sampled argmax). Validation stays
  the exact likelihood.

`s2s pretrain`'s objective (`nlp.pretraining`) is another `Objective`: the trainer calls
`loss` inside its compiled step and `validation_sums` to validate.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from nlp.model import Seq2Seq
from nlp.model.language_models import (
    EncoderLMHeads,
    Sums,
    decoder_lm_sums,
    encoder_lm_sums,
)
from nlp.model.losses import (
    UNLIKELIHOOD_PICKS,
    SampledLogits,
    coverage_losses,
    overused_unlikelihood,
    sample_log_uniform,
    sampled_logits,
    sampled_nll,
    token_losses,
    weighted,
)
from nlp.tokenizers.specials import BOS_ID, PAD_ID, UNK_ID
from nlp.util.config import ModelConfig, TrainConfig

SCHEDULES = ("none", "linear", "inverse_sigmoid")  # train.scheduled_sampling

# The random draws a training step makes, each a stream of its own: draws seeded alike are
# alike (a stateless uniform's first numbers are the same whatever its shape), so two options
# sharing a seed would, e.g., replace the inputs where the sampled softmax drew its rare words.
DRAWS = ("sampled_words", "predictions", "sampling_coins", "word_dropout")


def draw_seed(seed: int, step: tf.Tensor, draw: str) -> tf.Tensor:
    """The stateless seed of one of a step's `DRAWS`: `train.seed` and the step, so a resumed
    run draws what the uninterrupted run did, and a stream apart for every draw."""
    return tf.stack([
        tf.cast(seed, tf.int64),
        len(DRAWS) * tf.cast(step, tf.int64) + DRAWS.index(draw),
    ])


class TokenTerms(NamedTuple):
    """What a decoder pass over a batch's targets gives the loss."""

    losses: tf.Tensor  # [B,T] per-token loss, zero on padding
    mask: tf.Tensor  # [B,T] float, 1 on real tokens
    attention: tf.Tensor
    logits: tf.Tensor | SampledLogits  # each position's (N = B*T): [N, V], or sampled


def everywhere(value: tf.Tensor) -> tf.Tensor:
    """`value` summed over the replicas that each train on a part of the batch (itself in
    one process)."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)


def reply_means(losses: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """[B]: each reply's mean token loss (the length-normalised likelihood Hits ranks by)."""
    return tf.reduce_sum(losses, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


def neighbours(rows: tf.Tensor) -> tf.Tensor:
    """Each row's neighbour in the batch, the previous row (the ranking loss's other reply):
    a length bucket's rows have replies of about one length."""
    return tf.roll(rows, 1, axis=0)


def ranking_sums(
    own: tf.Tensor, other: tf.Tensor, target_out: tf.Tensor, margin: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """The ranking loss's sum over a batch and the rows it counts: max(0, margin - (other -
    own)) per row, `own` [B] the row's reply's mean token loss and `other` [B] its
    neighbour's read after the row's message; rows whose neighbour has the same reply are
    left out."""
    gaps = tf.nn.relu(margin - (other - own))
    distinct = tf.cast(
        tf.reduce_any(tf.not_equal(target_out, neighbours(target_out)), axis=1), gaps.dtype)
    return tf.reduce_sum(gaps * distinct), tf.reduce_sum(distinct)


def sampling_probability(config: TrainConfig, step: tf.Tensor) -> tf.Tensor:
    """The probability of feeding the model's prediction at training step `step` (0-based):
    `linear` rises from 0 to `train.sampling_max` over `train.sampling_steps` steps;
    `inverse_sigmoid` is Bengio et al.'s 1 - k / (k + exp(i / k)) with k =
    `train.sampling_steps` (half-way at about k ln k steps), capped at `train.sampling_max`."""
    i = tf.cast(step, tf.float32)
    top = tf.constant(config.sampling_max, tf.float32)
    k = float(max(1, config.sampling_steps))
    if config.scheduled_sampling == "linear":
        return top * tf.minimum(1.0, i / k)
    if config.scheduled_sampling == "inverse_sigmoid":
        return tf.minimum(top, 1.0 - k / (k + tf.exp(tf.minimum(i / k, 80.0))))
    return tf.constant(0.0, tf.float32)


def replaceable(target_in: tf.Tensor) -> tf.Tensor:
    """[B, T] bool: the decoder inputs a training option may replace (scheduled sampling's
    predictions, word dropout's `<unk>`): every one but the start token and padding."""
    positions = tf.range(tf.shape(target_in)[1])[None, :]
    return (positions > 0) & tf.not_equal(tf.cast(target_in, tf.int32), PAD_ID)


def inverse_frequency_weights(
    targets: Iterable[Sequence[int]], vocab_size: int, power: float
) -> np.ndarray:
    """Each word's ITF weight [V], float32: (count + 1) ** -power, where count is its
    occurrences in `targets`, scaled so the mean weight over those occurrences is 1. Why the
    scaling: the loss keeps the plain loss's size, so the learning rate tuned for it still
    serves. Why + 1: a word no target holds gets a finite weight (it also has no token to
    weigh in training)."""
    ids = np.fromiter(itertools.chain.from_iterable(targets), dtype=np.int64)
    counts = np.bincount(ids, minlength=vocab_size).astype(np.float64)
    weights = (counts + 1.0) ** -power
    total = counts.sum()
    if total > 0:
        weights /= float(counts @ weights) / total
    return weights.astype(np.float32)


def check(config: TrainConfig) -> None:
    """A ValueError naming each of these settings that is out of range."""
    problems = []
    if config.scheduled_sampling not in SCHEDULES:
        problems.append(
            f"train.scheduled_sampling must be one of {', '.join(SCHEDULES)}, "
            f"got {config.scheduled_sampling!r}"
        )
    if not 0.0 <= config.sampling_max <= 1.0:
        problems.append(f"train.sampling_max must be in [0, 1], got {config.sampling_max}")
    if config.sampling_steps < 1:
        problems.append(f"train.sampling_steps must be >= 1, got {config.sampling_steps}")
    if config.sampled_softmax < 0:
        problems.append(f"train.sampled_softmax must be >= 0, got {config.sampled_softmax}")
    if config.sampled_softmax > 0 and config.label_smoothing > 0:
        problems.append("train.sampled_softmax needs train.label_smoothing=0 (smoothing spreads "
                        "mass over the whole vocabulary, which a sampled softmax never sees)")
    if not 0.0 <= config.target_word_dropout < 1.0:
        problems.append("train.target_word_dropout must be in [0, 1), "
                        f"got {config.target_word_dropout}")
    if config.itf_power < 0:
        problems.append(f"train.itf_power must be >= 0, got {config.itf_power}")
    if config.contrastive_weight < 0 or config.contrastive_margin < 0:
        problems.append("train.contrastive_weight and train.contrastive_margin must be >= 0, "
                        f"got {config.contrastive_weight} and {config.contrastive_margin}")
    if not 0.0 <= config.contrastive_from < 1.0:
        problems.append(
            f"train.contrastive_from must be in [0, 1), got {config.contrastive_from}")
    if config.unlikelihood_weight < 0:
        problems.append(
            f"train.unlikelihood_weight must be >= 0, got {config.unlikelihood_weight}")
    if config.unlikelihood_pick not in UNLIKELIHOOD_PICKS:
        problems.append(f"train.unlikelihood_pick must be one of {', '.join(UNLIKELIHOOD_PICKS)}"
                        f", got {config.unlikelihood_pick!r}")
    elif config.unlikelihood_pick == "sampled" and config.sampled_softmax == 0:
        problems.append("train.unlikelihood_pick=sampled needs train.sampled_softmax > 0 (under "
                        "the exact softmax it is the model's own argmax: leave it at model)")
    if config.lm_loss_weight < 0:
        problems.append(f"train.lm_loss_weight must be >= 0, got {config.lm_loss_weight}")
    if config.ema_decay != 0 and not 0.0 < config.ema_decay < 1.0:
        problems.append(f"train.ema_decay must be in (0, 1) or 0 for none, got {config.ema_decay}")
    if problems:
        raise ValueError("; ".join(problems))



def check_with_model(config: TrainConfig, model: ModelConfig) -> None:
    """A ValueError for a training setting the model's config rules out: checked with the
    other settings before a run reads its corpus or writes its directory."""
    if config.sampled_softmax > 0 and model.copy:
        raise ValueError("train.sampled_softmax needs model.copy=false: a copying model's "
                         "distribution mixes the vocabulary's with the source's words")
    if config.unlikelihood_weight > 0 and model.copy:
        raise ValueError("train.unlikelihood_weight needs model.copy=false: a copying "
                         "model's prediction mixes the vocabulary's with the source's words")
    if config.contrastive_weight > 0 and model.copy:
        raise ValueError("train.contrastive_weight needs model.copy=false: a copied word's id "
                         "names a position of its own row's source, not of the neighbour's")
    if config.lm_loss_weight > 0 and model.architecture != "recurrent":
        raise ValueError("train.lm_loss_weight needs model.architecture=recurrent: its "
                         "language models read the encoder's two directions")


class Objective:
    """The seq2seq objective of `s2s train`: masked cross-entropy (label smoothing, coverage
    loss), with scheduled sampling and the language-model losses when the config asks."""

    def __init__(
        self,
        model: Seq2Seq,
        config: TrainConfig,
        heads: EncoderLMHeads | None = None,
        token_weights: np.ndarray | None = None,
    ) -> None:
        """`heads`: the encoder's language-model projections (`train.lm_loss_weight` > 0),
        e.g. from `s2s pretrain`; new ones are made when they are needed and not given.
        `token_weights` [V]: `inverse_frequency_weights` of the training targets, which
        `train.itf_power` > 0 needs."""
        check(config)
        check_with_model(config, model.config)
        if config.itf_power > 0 and token_weights is None:
            raise ValueError("train.itf_power needs the training targets' token weights")
        self.model = model
        self.config = config
        if heads is None and config.lm_loss_weight > 0:
            heads = EncoderLMHeads(model.config)
        self.heads = heads if config.lm_loss_weight > 0 else None
        self.token_weights = (
            tf.constant(token_weights, tf.float32)
            if config.itf_power > 0 and token_weights is not None else None)

    @property
    def layers(self) -> dict[str, keras.Model]:
        """What trains beside the model: checkpointed with it, not part of its bundle."""
        return {} if self.heads is None else {"encoder_lm_heads": self.heads}

    @property
    def trainable_variables(self) -> list[keras.Variable]:
        return [v for layer in self.layers.values() for v in layer.trainable_variables]

    def loss(
        self,
        source: tf.Tensor,
        target_in: tf.Tensor,
        target_out: tf.Tensor,
        step: tf.Tensor,
        ranking: bool = True,
    ) -> tf.Tensor:
        """The training loss of a batch (dropout on) at optimizer step `step`; `ranking`
        False leaves the ranking loss out (before `train.contrastive_from`)."""
        model, config = self.model, self.config
        state, context, first = model.encode_with_first_layer(source, training=True)
        inputs = target_in
        if config.scheduled_sampling != "none":
            inputs = self.sampled_inputs(state, context, target_in, step)
        if config.target_word_dropout > 0:
            inputs = self.dropped_inputs(inputs, step)
        terms = self.token_terms(state, context, inputs, target_out, step)
        losses, mask = terms.losses, terms.mask
        rows = reply_means(losses, mask)
        if self.token_weights is not None:
            losses = weighted(losses, target_out, self.token_weights)
        if model.config.coverage:
            losses += config.coverage_weight * coverage_losses(terms.attention) * mask
        loss = tf.reduce_sum(losses) / tf.maximum(tf.reduce_sum(mask), 1.0)
        if config.unlikelihood_weight > 0:
            penalty, count = overused_unlikelihood(
                terms.logits, target_out, model.config.vocab_size, everywhere,
                pick=config.unlikelihood_pick)
            # the mean over this replica's penalised positions (one process: the batch's)
            loss += config.unlikelihood_weight * penalty / tf.maximum(count, 1.0)
        if config.contrastive_weight > 0 and ranking:
            # the neighbour's reply read as the own one was (the same word dropout or
            # scheduled sampling), so the two losses compare like with like
            loss += config.contrastive_weight * self.contrastive_loss(
                state, context, inputs, target_out, rows, step)
        if self.heads is not None:
            loss += config.lm_loss_weight * self.lm_loss(source, target_in, target_out, first)
        return loss

    def token_terms(
        self,
        state: dict[str, tf.Tensor],
        context: dict[str, tf.Tensor],
        target_in: tf.Tensor,
        target_out: tf.Tensor,
        step: tf.Tensor,
    ) -> TokenTerms:
        """The per-token losses of a decoder pass (dropout on; label smoothing; the sampled
        softmax's words when `train.sampled_softmax` > 0, drawn statelessly from
        `train.seed` and the step), with its mask, attention and logits."""
        model, config = self.model, self.config
        if config.sampled_softmax > 0:
            features, attention, _ = model.teacher_forcing_features(
                state, context, target_in, training=True)
            kernel, bias = model.output_parameters()
            vocab = model.config.vocab_size
            sampled = sample_log_uniform(min(config.sampled_softmax, vocab), vocab,
                                         draw_seed(config.seed, step, "sampled_words"))
            logits = sampled_logits(features, kernel, bias, target_out, sampled, model.products)
            losses, mask = sampled_nll(logits.corrected, target_out)
            return TokenTerms(losses, mask, attention, logits)
        outputs = model.teacher_forcing_encoded(state, context, target_in, training=True)
        losses, mask = token_losses(outputs, target_out, model.config.vocab_size,
                                    config.label_smoothing)
        logits = tf.reshape(outputs.logits, [-1, tf.shape(outputs.logits)[-1]])
        return TokenTerms(losses, mask, outputs.attention, logits)

    def contrastive_loss(
        self,
        state: dict[str, tf.Tensor],
        context: dict[str, tf.Tensor],
        target_in: tf.Tensor,
        target_out: tf.Tensor,
        own: tf.Tensor,
        step: tf.Tensor,
    ) -> tf.Tensor:
        """The mean over the batch of max(0, margin - (another reply's loss - the row's own
        reply's loss)), each the reply's mean token loss given the row's message (`own` [B]:
        the own replies'), `train.contrastive_margin` the margin. The other reply is the
        previous row's (a length bucket's rows have replies of about one length); rows whose
        neighbour has the same reply are left out. Why: likelihood alone is highest for
        replies that fit every message ("I don't know."), and a model trained by it alone
        ranks a message's own reply above random ones barely more often than chance; a
        ranking loss on the length-normalised likelihood of candidates beside the likelihood
        teaches the ranking itself (Liu et al. 2022, BRIO; An et al. 2022, CoNT) and lowers
        the generic replies that would win it for any message. It costs a second decoder
        pass over the batch."""
        other_in, other_out = neighbours(target_in), neighbours(target_out)
        terms = self.token_terms(state, context, other_in, other_out, step)
        other = reply_means(terms.losses, terms.mask)
        total, rows = ranking_sums(own, other, target_out, self.config.contrastive_margin)
        return total / tf.maximum(rows, 1.0)

    def lm_loss(
        self,
        source: tf.Tensor,
        target_in: tf.Tensor,
        target_out: tf.Tensor,
        first_layer: tf.Tensor,
        training: bool = True,
    ) -> tf.Tensor:
        """The mean token loss of the encoder's two directions on the sources and of the
        decoder without a source on the targets (`train.lm_loss_weight` multiplies it)."""
        if self.heads is None:
            raise ValueError("the language-model losses need train.lm_loss_weight > 0")
        encoder_sum, encoder_count = encoder_lm_sums(
            self.model, self.heads, source, first_layer, training
        )
        decoder_sum, decoder_count = decoder_lm_sums(self.model, target_in, target_out, training)
        return (encoder_sum + decoder_sum) / tf.maximum(encoder_count + decoder_count, 1.0)

    def sampled_inputs(
        self,
        state: dict[str, tf.Tensor],
        context: dict[str, tf.Tensor],
        target_in: tf.Tensor,
        step: tf.Tensor,
    ) -> tf.Tensor:
        """`target_in` with each input after the first replaced, with the scheduled
        probability, by a token drawn from the model's prediction at the step before it."""
        probability = sampling_probability(self.config, step)
        predicted = self.model.teacher_forcing_encoded(state, context, target_in, training=False)
        logits = tf.stop_gradient(predicted.logits)
        # never feed padding or a start token as a prediction
        columns = tf.range(tf.shape(logits)[-1])
        logits = tf.where(columns > BOS_ID, logits, tf.constant(-1e9, logits.dtype))
        shape = tf.shape(target_in)
        drawn = tf.random.stateless_categorical(
            tf.reshape(logits, [-1, tf.shape(logits)[-1]]), 1,
            seed=draw_seed(self.config.seed, step, "predictions"), dtype=tf.int32,
        )
        drawn = tf.reshape(drawn, shape)
        # the prediction made at position t is the input of position t + 1
        shifted = tf.concat([target_in[:, :1], drawn[:, :-1]], axis=1)
        coins = tf.random.stateless_uniform(
            shape, seed=draw_seed(self.config.seed, step, "sampling_coins"))
        replace = (coins < probability) & replaceable(target_in)
        return tf.where(replace, shifted, tf.cast(target_in, tf.int32))

    def dropped_inputs(self, target_in: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        """`target_in` with each input after the first (the start token) that is not
        padding read as `<unk>` with probability `train.target_word_dropout`."""
        coins = tf.random.stateless_uniform(
            tf.shape(target_in), seed=draw_seed(self.config.seed, step, "word_dropout"))
        drop = (coins < self.config.target_word_dropout) & replaceable(target_in)
        return tf.where(drop, tf.constant(UNK_ID, tf.int32), tf.cast(target_in, tf.int32))

    def validation_sums(
        self, source: tf.Tensor, target_in: tf.Tensor, target_out: tf.Tensor
    ) -> Sums:
        """Summed cross-entropy of the targets and their count (no smoothing, no dropout, no
        sampling): the validation loss that picks the best epoch."""
        outputs = self.model.teacher_forcing(source, target_in, training=False)
        losses, mask = token_losses(outputs, target_out, self.model.config.vocab_size)
        return tf.reduce_sum(losses), tf.reduce_sum(mask)

    def validation_ranked_sums(
        self, source: tf.Tensor, target_in: tf.Tensor, target_out: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """`validation_sums` and the ranking loss's (`contrastive_loss` without dropout or
        sampling: summed margin losses and the rows counted), from one encoding: what
        validates a run once its ranking loss has joined (`Trainer`)."""
        model, vocab = self.model, self.model.config.vocab_size
        state, context = model.encode(source, training=False)
        outputs = model.teacher_forcing_encoded(state, context, target_in, training=False)
        losses, mask = token_losses(outputs, target_out, vocab)
        others = model.teacher_forcing_encoded(
            state, context, neighbours(target_in), training=False)
        other_losses, other_mask = token_losses(others, neighbours(target_out), vocab)
        total, rows = ranking_sums(
            reply_means(losses, mask), reply_means(other_losses, other_mask), target_out,
            self.config.contrastive_margin)
        return tf.reduce_sum(losses), tf.reduce_sum(mask), total, rows
