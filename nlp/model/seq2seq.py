"""The one sequence-to-sequence model: bi-RNN encoder, attention decoder, optional copying.

Training (teacher forcing, `call`) and decoding (`encode` + `decode_step`) run the very same
decoder step, so what is trained is exactly what generates. There is no separate encoder
model or decoder model rebuilt from layers.

Copying (pointer-generator) works on *extended* source ids: a source word outside the
vocabulary is given the id `vocab_size + j`, where j is the position of its first occurrence
in that source (see `nlp.codec`). The step output then covers `vocab_size + source_length`
entries, and an output id `vocab_size + j` means "copy source word j".
"""

from __future__ import annotations

import keras
import tensorflow as tf

from nlp.config import ModelConfig
from nlp.model.attention import attend, make_scorer
from nlp.specials import PAD_ID, UNK_ID

State = dict[str, tf.Tensor]
Context = dict[str, tf.Tensor]

_CELLS = {
    "lstm": (keras.layers.LSTM, keras.layers.LSTMCell, 2),
    "gru": (keras.layers.GRU, keras.layers.GRUCell, 1),
}


def _check(config: ModelConfig) -> None:
    problems = []
    if config.vocab_size <= UNK_ID:
        problems.append(f"vocab_size must be larger than {UNK_ID}, got {config.vocab_size}")
    if config.cell not in _CELLS:
        problems.append(f"cell must be one of {sorted(_CELLS)}, got {config.cell!r}")
    if config.units % 2:
        problems.append(f"units must be even (the encoder is bidirectional), got {config.units}")
    if min(config.encoder_layers, config.decoder_layers, config.embedding_dim, config.units) < 1:
        problems.append("layers, embedding_dim and units must be positive")
    if not 0.0 <= config.dropout < 1.0:
        problems.append(f"dropout must be in [0, 1), got {config.dropout}")
    if problems:
        raise ValueError("invalid model config: " + "; ".join(problems))


class Seq2Seq(keras.Model):
    """Embedding -> bidirectional LSTM/GRU encoder -> attention decoder with input feeding."""

    def __init__(self, config: ModelConfig, **kwargs: object) -> None:
        super().__init__(**kwargs)
        _check(config)
        self.config = config
        vocab, emb, units = config.vocab_size, config.embedding_dim, config.units
        rnn_layer, cell_layer, self.states_per_layer = _CELLS[config.cell]

        self.source_embedding = keras.layers.Embedding(vocab, emb, name="source_embedding")
        self.target_embedding = (
            self.source_embedding
            if config.share_embeddings
            else keras.layers.Embedding(vocab, emb, name="target_embedding")
        )
        self.dropout = keras.layers.Dropout(config.dropout)
        self.encoder_rnns = [
            keras.layers.Bidirectional(
                rnn_layer(units // 2, return_sequences=True, return_state=True),
                name=f"encoder_{i}",
            )
            for i in range(config.encoder_layers)
        ]
        self.bridge = keras.layers.Dense(
            units * self.states_per_layer * config.decoder_layers, activation="tanh", name="bridge"
        )
        self.decoder_cells = [
            cell_layer(units, name=f"decoder_cell_{i}") for i in range(config.decoder_layers)
        ]
        self.scorer = make_scorer(config.attention, units, units)
        self.attentional = keras.layers.Dense(
            units, activation="tanh", use_bias=False, name="attentional"
        )
        if config.tie_output:
            self.pre_output = keras.layers.Dense(emb, use_bias=False, name="pre_output")
        else:
            self.output_layer = keras.layers.Dense(vocab, name="output")
        self.copy_gate = (
            keras.layers.Dense(1, activation="sigmoid", name="copy_gate") if config.copy else None
        )
        self._build_weights()

    def _build_weights(self) -> None:
        """Create every weight now: variables cannot be created inside the decoding loop."""
        cfg = self.config
        emb, units = cfg.embedding_dim, cfg.units
        self.source_embedding.build((None, None))
        self.target_embedding.build((None, None))
        width = emb
        for rnn in self.encoder_rnns:
            rnn.build((None, None, width))
            width = units
        self.bridge.build((None, units))
        width = emb + (units if cfg.input_feeding else 0)
        for cell in self.decoder_cells:
            cell.build((None, width))
            width = units
        self.attentional.build((None, 2 * units))
        if cfg.tie_output:
            self.pre_output.build((None, units))
            self.output_bias = self.add_weight(
                shape=(cfg.vocab_size,), initializer="zeros", name="output_bias"
            )
        else:
            self.output_layer.build((None, units))
        if self.copy_gate is not None:
            self.copy_gate.build((None, 2 * units + emb))
        self.built = True

    # --- encoder -------------------------------------------------------------------------

    def encode(self, source_ids: tf.Tensor, training: bool = False) -> tuple[State, Context]:
        """Run the encoder once; returns the decoder's initial state and the fixed context."""
        source_ids = tf.cast(source_ids, tf.int32)
        mask = tf.not_equal(source_ids, PAD_ID)
        x = self.dropout(self.source_embedding(self._in_vocab(source_ids)), training=training)
        final_h: list[tf.Tensor] = []
        for rnn in self.encoder_rnns:
            outputs = rnn(x, mask=mask, training=training)
            sequence, states = outputs[0], outputs[1:]
            half = len(states) // 2
            final_h = [states[0], states[half]]  # forward h, backward h
            x = self.dropout(sequence, training=training)
        memory = sequence
        init = tf.split(
            self.bridge(tf.concat(final_h, axis=-1)),
            self.states_per_layer * self.config.decoder_layers,
            axis=-1,
        )
        state: State = {f"rnn_{i}": s for i, s in enumerate(init)}
        if self.config.input_feeding:
            state["feed"] = tf.zeros_like(init[0])
        context: Context = {
            "memory": memory,
            "keys": self.scorer.keys(memory),
            "mask": mask,
            "source_ids": source_ids,
        }
        return state, context

    # --- one decoder step ----------------------------------------------------------------

    def decode_step(
        self, prev_ids: tf.Tensor, state: State, context: Context, training: bool = False
    ) -> tuple[tf.Tensor, State, tf.Tensor]:
        """One output token: (log_probs [B,V'], new state, attention weights [B,S])."""
        embedded = self.dropout(
            self.target_embedding(self._in_vocab(tf.cast(prev_ids, tf.int32))), training=training
        )
        x = embedded
        if self.config.input_feeding:
            x = tf.concat([x, state["feed"]], axis=-1)
        new_state: State = {}
        per = self.states_per_layer
        for i, cell in enumerate(self.decoder_cells):
            names = [f"rnn_{i * per + k}" for k in range(per)]
            h, cell_states = cell(x, [state[n] for n in names], training=training)
            new_state.update(zip(names, cell_states, strict=True))
            x = self.dropout(h, training=training) if i + 1 < len(self.decoder_cells) else h
        context_vector, weights = attend(
            self.scorer, h, context["keys"], context["memory"], context["mask"]
        )
        attentional = self.attentional(tf.concat([context_vector, h], axis=-1))
        if self.config.input_feeding:
            new_state["feed"] = attentional
        logits = tf.cast(self._project(self.dropout(attentional, training=training)), tf.float32)
        if self.copy_gate is None:
            return tf.nn.log_softmax(logits), new_state, weights
        gate = tf.cast(
            self.copy_gate(tf.concat([context_vector, h, embedded], axis=-1)), tf.float32
        )
        log_probs = self._mix_copy(
            logits, gate, tf.cast(weights, tf.float32), context["source_ids"]
        )
        return log_probs, new_state, weights

    def _project(self, attentional: tf.Tensor) -> tf.Tensor:
        if self.config.tie_output:
            table = tf.convert_to_tensor(self.target_embedding.embeddings)
            return (
                tf.matmul(self.pre_output(attentional), table, transpose_b=True) + self.output_bias
            )
        return self.output_layer(attentional)

    def _mix_copy(
        self, logits: tf.Tensor, gate: tf.Tensor, weights: tf.Tensor, source_ids: tf.Tensor
    ) -> tf.Tensor:
        """Pointer-generator mixture over vocabulary + source positions, as log-probs."""
        vocab = self.config.vocab_size
        batch, length = tf.shape(source_ids)[0], tf.shape(source_ids)[1]
        copy_mass = weights * (1.0 - gate)
        rows = tf.tile(tf.range(batch)[:, None], [1, length])
        in_vocab = tf.logical_and(source_ids < vocab, source_ids > UNK_ID)
        to_vocab = tf.scatter_nd(
            tf.stack([rows, tf.where(in_vocab, source_ids, 0)], axis=-1),
            tf.where(in_vocab, copy_mass, 0.0),
            tf.stack([batch, vocab]),
        )
        oov = source_ids >= vocab
        to_source = tf.scatter_nd(
            tf.stack([rows, tf.where(oov, source_ids - vocab, 0)], axis=-1),
            tf.where(oov, copy_mass, 0.0),
            tf.stack([batch, length]),
        )
        probs = tf.concat([tf.nn.softmax(logits) * gate + to_vocab, to_source], axis=-1)
        return tf.math.log(probs + 1e-9)

    def _in_vocab(self, ids: tf.Tensor) -> tf.Tensor:
        """Extended (copy) ids are embedded as <unk>."""
        return tf.where(ids >= self.config.vocab_size, tf.constant(UNK_ID, ids.dtype), ids)

    # --- teacher forcing -----------------------------------------------------------------

    def call(self, inputs: tuple[tf.Tensor, tf.Tensor], training: bool = False) -> tf.Tensor:
        """Teacher forcing: log-probs [B,T,V'] for target_in = <s> y1 .. y(T-1)."""
        source_ids, target_in = inputs
        state, context = self.encode(source_ids, training=training)
        target_in = tf.cast(target_in, tf.int32)
        steps = tf.shape(target_in)[1]
        outputs = tf.TensorArray(tf.float32, size=steps)

        def body(t: tf.Tensor, state: State, outputs: tf.TensorArray):  # type: ignore[no-untyped-def]
            log_probs, state, _ = self.decode_step(target_in[:, t], state, context, training)
            return t + 1, state, outputs.write(t, log_probs)

        _, _, outputs = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), state, outputs)
        )
        return tf.transpose(outputs.stack(), [1, 0, 2])
