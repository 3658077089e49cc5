"""What `s2s pretrain` minimises: the two objectives of Dai & Le (2015) on unlabelled text.

- `lm`: language models. The decoder reads each window with the source BOS alone and
  predicts its next token (its cells, attention and output projection learn p(text)); the
  encoder's first-layer directions predict the next token (forward) and the previous one
  (backward) through their own projections (`nlp.model.language_models`).
- `autoencoder`: the sequence autoencoder. The encoder reads a window and the decoder
  rebuilds it from the encoder's state and attention, training the encoder's every layer,
  the bridge and the decoder's use of the source. With attention the rebuilding is close to
  copying, which is why the language models train the decoder as well.

The loss is the mean over every predicted token of the objectives chosen, so each counts by
its tokens; the same mean on the validation windows (no dropout) picks the best epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import tensorflow as tf

from nlp.model import Seq2Seq
from nlp.model.language_models import EncoderLMHeads, Sums, decoder_lm_sums, encoder_lm_sums
from nlp.model.losses import token_losses
from nlp.training.objective import Objective
from nlp.util.config import TrainConfig

OBJECTIVES = ("lm", "autoencoder")


def check_objectives(objectives: Sequence[str]) -> tuple[str, ...]:
    """The objectives named, in a fixed order; a ValueError for none or an unknown one."""
    unknown = sorted(set(objectives) - set(OBJECTIVES))
    if unknown or not objectives:
        raise ValueError(
            f"--objectives: choose among {', '.join(OBJECTIVES)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    return tuple(name for name in OBJECTIVES if name in objectives)


class PretrainingObjective(Objective):
    """The `lm` and `autoencoder` objectives (see the module docstring) as the trainer's
    `Objective`: the heads train beside the model and are checkpointed with it."""

    def __init__(
        self,
        model: Seq2Seq,
        config: TrainConfig,
        heads: EncoderLMHeads | None,
        objectives: Sequence[str],
    ) -> None:
        # scheduled sampling, kept LM losses, ITF weights, the unlikelihood (and what it
        # picks) and the ranking loss belong to fine-tuning, not here
        super().__init__(model, replace(
            config, lm_loss_weight=0.0, scheduled_sampling="none", itf_power=0.0,
            unlikelihood_weight=0.0, unlikelihood_pick="model", contrastive_weight=0.0))
        self.objectives = check_objectives(objectives)
        if "lm" in self.objectives and heads is None:
            raise ValueError("the lm objective needs the encoder's language-model heads")
        self.heads = heads if "lm" in self.objectives else None

    def sums(
        self, source: tf.Tensor, target_in: tf.Tensor, target_out: tf.Tensor, training: bool
    ) -> Sums:
        """The token losses of every objective chosen, summed, and their count."""
        model = self.model
        state, context, first = model.encode_with_first_layer(source, training=training)
        total, count = tf.constant(0.0), tf.constant(0.0)
        if "autoencoder" in self.objectives:
            outputs = model.teacher_forcing_encoded(state, context, target_in, training=training)
            losses, mask = token_losses(outputs, target_out, model.config.vocab_size)
            total, count = total + tf.reduce_sum(losses), count + tf.reduce_sum(mask)
        if self.heads is not None:
            for part_sum, part_count in (
                encoder_lm_sums(model, self.heads, source, first, training),
                decoder_lm_sums(model, target_in, target_out, training),
            ):
                total, count = total + part_sum, count + part_count
        return total, count

    def loss(
        self,
        source: tf.Tensor,
        target_in: tf.Tensor,
        target_out: tf.Tensor,
        step: tf.Tensor,
        ranking: bool = True,
    ) -> tf.Tensor:
        total, count = self.sums(source, target_in, target_out, training=True)
        return total / tf.maximum(count, 1.0)

    def validation_sums(
        self, source: tf.Tensor, target_in: tf.Tensor, target_out: tf.Tensor
    ) -> Sums:
        return self.sums(source, target_in, target_out, training=False)
