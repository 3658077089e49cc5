"""The model's parts read as language models (Dai & Le 2015; Ramachandran et al. 2017).

- The decoder is a language model when the source says nothing: `decoder_lm_sums` runs
  teacher forcing with the one-token source BOS (what `data.task=lm` trains), so the decoder
  cells, the attention and the output projection learn p(text).
- The encoder's first layer holds two: its forward direction, having read tokens 0..t,
  predicts token t+1, and its backward direction, having read t..end, predicts token t-1,
  each through an output projection of its own (`EncoderLMHeads`), which is not part of the
  seq2seq model: `s2s pretrain` keeps it beside the model's bundle, and training with
  `train.lm_loss_weight` goes on training it. Deeper encoder layers read both directions, so
  they see the token to predict and are no language model.

Targets outside the vocabulary (copy ids) count as <unk> here, as they are embedded: a
language model has no source to copy from.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from nlp.model.distribution import DecoderOutputs
from nlp.model.losses import token_losses
from nlp.model.seq2seq import Seq2Seq
from nlp.tokenizers.specials import BOS_ID, PAD_ID, UNK_ID
from nlp.util.config import ModelConfig

Sums = tuple[tf.Tensor, tf.Tensor]  # (sum of token losses, number of tokens), float32


class EncoderLMHeads(keras.Model):
    """The output projections of the first encoder layer's two directions: [units/2] ->
    vocabulary logits. A `keras.Model` for its `save_weights` / `load_weights`."""

    def __init__(self, config: ModelConfig, **kwargs: object) -> None:
        super().__init__(name="encoder_lm_heads", **kwargs)
        self.forward = keras.layers.Dense(config.vocab_size, name="encoder_lm_forward")
        self.backward = keras.layers.Dense(config.vocab_size, name="encoder_lm_backward")
        half = config.units // 2
        self.forward.build((None, half))
        self.backward.build((None, half))
        self.built = True


def in_vocab(ids: tf.Tensor, vocab_size: int) -> tf.Tensor:
    """Copy ids (>= vocab_size) as <unk>."""
    ids = tf.cast(ids, tf.int32)
    return tf.where(ids >= vocab_size, tf.constant(UNK_ID, tf.int32), ids)


def _sums(logits: tf.Tensor, targets: tf.Tensor, mask: tf.Tensor) -> Sums:
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=targets, logits=tf.cast(logits, tf.float32)
    )
    mask = tf.cast(mask, tf.float32)
    return tf.reduce_sum(losses * mask), tf.reduce_sum(mask)


def encoder_lm_sums(
    model: Seq2Seq,
    heads: EncoderLMHeads,
    source_ids: tf.Tensor,
    first_layer: tf.Tensor,
    training: bool = False,
) -> Sums:
    """Both directions' next-token losses over the real source tokens, summed, and their
    count. `first_layer`: `model.encode_with_first_layer`'s third output for `source_ids`."""
    source_ids = in_vocab(source_ids, model.config.vocab_size)
    real = tf.not_equal(source_ids, PAD_ID)
    half = model.config.units // 2
    states = model.dropout(first_layer, training=training)
    forward = heads.forward(states[:, :-1, :half])  # after tokens 0..t: token t+1
    backward = heads.backward(states[:, 1:, half:])  # after tokens t..end: token t-1
    forward_sum, forward_count = _sums(forward, source_ids[:, 1:], real[:, 1:])
    backward_sum, backward_count = _sums(backward, source_ids[:, :-1], real[:, 1:])
    return forward_sum + backward_sum, forward_count + backward_count


def decoder_lm_outputs(
    model: Seq2Seq, target_in: tf.Tensor, training: bool = False
) -> DecoderOutputs:
    """Teacher forcing of `target_in` with the source BOS alone: the decoder as p(text)."""
    bos = tf.fill(tf.stack([tf.shape(target_in)[0], 1]), tf.constant(BOS_ID, tf.int32))
    return model.teacher_forcing(bos, in_vocab(target_in, model.config.vocab_size), training)


def decoder_lm_sums(
    model: Seq2Seq, target_in: tf.Tensor, target_out: tf.Tensor, training: bool = False
) -> Sums:
    """The decoder's language-model loss on the targets, summed, and its token count."""
    outputs = decoder_lm_outputs(model, target_in, training)
    losses, mask = token_losses(
        outputs, in_vocab(target_out, model.config.vocab_size), model.config.vocab_size
    )
    return tf.reduce_sum(losses), tf.reduce_sum(mask)
