"""The one sequence-to-sequence model: bi-RNN encoder, attention decoder, optional copying.

The decoder modes of the Keras seq2seq write-ups are options of this one class:
`attention=none` is the basic encoder-decoder (the decoder sees the source only through
the encoder summary, its initial state), `input_feeding` feeds the previous output vector
back in, `peek` adds the encoder summary (the final states of both encoder directions) to
the decoder input at every step, and the attention scorers attend to every source token.
Without attention there is nothing to look at: the attention weights reported are uniform
over the real source tokens (zero on padding), so decoding, coverage penalties and
attention plots keep working and show that no token is singled out.

Training (teacher forcing, `call`) and decoding (`encode` + `decode_step`) run the very same
decoder step, so what is trained is exactly what generates. There is no separate encoder
model or decoder model rebuilt from layers.

`model.architecture=transformer` puts the Transformer layers of `nlp.model.transformer` in
place of the recurrent encoder, the decoder cells and their attention; the embeddings, the
output projection and the contract of `encode` / `decode_step` / teacher forcing stay, so the
shared decoder, the losses and the export serve both.

Copying (pointer-generator) works on *extended* source ids: a source word outside the
vocabulary is given the id `vocab_size + j`, where j is the position of its first occurrence
in that source (see `nlp.generation.codec`). The step output then covers `vocab_size +
source_length` entries, and an output id `vocab_size + j` means "copy source word j".
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from nlp.model import recurrence, transformer
from nlp.model.attention import NO_ATTENTION, SCORERS, attend, make_scorer
from nlp.model.distribution import DecoderOutputs, log_probabilities
from nlp.model.feeding_loop import AttentionInputs, gru_attention_loop, lstm_attention_loop
from nlp.tokenizers.specials import PAD_ID, UNK_ID
from nlp.util.config import ModelConfig

State = dict[str, tf.Tensor]
Context = dict[str, tf.Tensor]

_CELLS = {
    "lstm": (keras.layers.LSTM, keras.layers.LSTMCell, 2),
    "gru": (keras.layers.GRU, keras.layers.GRUCell, 1),
}


ARCHITECTURES = ("recurrent", "transformer")


def check_config(config: ModelConfig) -> None:
    """A ValueError naming every setting of `config` the model cannot be built with."""
    problems = []
    if config.architecture not in ARCHITECTURES:
        problems.append(f"architecture must be one of {', '.join(ARCHITECTURES)}, "
                        f"got {config.architecture!r}")
    if config.architecture == "transformer":
        if config.heads < 1 or config.units % config.heads:
            problems.append(f"units ({config.units}) must be a multiple of heads "
                            f"({config.heads}) for architecture=transformer")
        if config.decoder_positions < 2:
            problems.append("decoder_positions must be at least 2")
        unsupported = [name for name in ("copy", "coverage", "input_feeding", "peek",
                                         "pretrained") if getattr(config, name)]
        if unsupported:
            problems.append(f"architecture=transformer has no {', '.join(unsupported)} "
                            "(the recurrent model's); leave them unset")
    if config.vocab_size <= UNK_ID:
        problems.append(f"vocab_size must be larger than {UNK_ID}, got {config.vocab_size}")
    if config.cell not in _CELLS:
        problems.append(f"cell must be one of {sorted(_CELLS)}, got {config.cell!r}")
    if config.recurrence not in recurrence.RECURRENCES:
        problems.append(
            f"recurrence must be one of {', '.join(recurrence.RECURRENCES)}, "
            f"got {config.recurrence!r}"
        )
    if config.units % 2:
        problems.append(f"units must be even (the encoder is bidirectional), got {config.units}")
    if min(config.encoder_layers, config.decoder_layers, config.embedding_dim, config.units) < 1:
        problems.append("layers, embedding_dim and units must be positive")
    if config.architecture == "recurrent" and config.attention not in (*SCORERS, NO_ATTENTION):
        problems.append(f"unknown attention {config.attention!r}; choose one of "
                        f"{', '.join([*sorted(SCORERS), NO_ATTENTION])}")
    if config.attention == NO_ATTENTION and (config.copy or config.coverage):
        problems.append(
            "copy and coverage need attention (they read its weights); "
            "attention=none cannot have copy=true or coverage=true"
        )
    if not 0.0 <= config.dropout < 1.0:
        problems.append(f"dropout must be in [0, 1), got {config.dropout}")
    if problems:
        raise ValueError("invalid model config: " + "; ".join(problems))


class _Untracked:
    """Holds layers the model uses but must not own: `recurrence.keras_sequence` layers run
    the decoder cells' variables, which the model already saves under `decoder_cells`
    (Keras and TensorFlow track layers in attributes, lists and tuples, not in this)."""

    def __init__(self, layers: Sequence[keras.layers.Layer]) -> None:
        self.layers = tuple(layers)


class Seq2Seq(keras.Model):
    """Embedding -> bidirectional LSTM/GRU encoder -> attention decoder with input feeding
    (or, `model.architecture=transformer`, Transformer layers both sides)."""

    def __init__(
        self, config: ModelConfig, products: str | None = None, **kwargs: object
    ) -> None:
        """`products`: the operand dtype of the matrix products with the model's kernels in
        teacher forcing (output projection, input projections, the loops' per-step products,
        the attentional layer), e.g. "bfloat16" under `train.precision`
        (`nlp.training.precision`); None: the compute dtype. Keras' layers, which run the
        encoder and the decoder without input feeding under `model.recurrence=keras`,
        compute in their own dtype instead."""
        super().__init__(**kwargs)
        check_config(config)
        self.config = config
        # "keras" or "written" (`recurrence.resolve`): what this model runs, on this device
        self.recurrence = recurrence.resolve(config.recurrence)
        self.products = None if products is None else tf.as_dtype(products)
        vocab, emb, units = config.vocab_size, config.embedding_dim, config.units
        rnn_layer, cell_layer, self.states_per_layer = _CELLS[config.cell]

        self.source_embedding = keras.layers.Embedding(vocab, emb, name="source_embedding")
        self.target_embedding = (
            self.source_embedding
            if config.share_embeddings
            else keras.layers.Embedding(vocab, emb, name="target_embedding")
        )
        self.dropout = keras.layers.Dropout(config.dropout)
        self.transformer = config.architecture == "transformer"
        if self.transformer:
            self._init_transformer()
            return
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
        self.scorer = (
            None
            if config.attention == NO_ATTENTION
            else make_scorer(config.attention, units, units, coverage=config.coverage)
        )
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
        self._decoder_sequences = _Untracked(
            [recurrence.keras_sequence(cell) for cell in self.decoder_cells]
            if self.recurrence == "keras"
            else []
        )

    def _init_transformer(self) -> None:
        """`model.architecture=transformer`: its layers (`nlp.model.transformer`) in place of
        the recurrent encoder, decoder and attention; the embeddings and the output
        projection are the same."""
        cfg = self.config
        units = cfg.units
        self.states_per_layer = 0
        self.encoder_rnns, self.decoder_cells = [], []
        self.scorer = self.copy_gate = None
        self.embed_in = (keras.layers.Dense(units, use_bias=False, name="embed_in")
                         if cfg.embedding_dim != units else None)
        self.encoder_blocks = [
            transformer.Block(units, cfg.heads, cfg.dropout, cross=False, products=self.products,
                              name=f"encoder_block_{i}")
            for i in range(cfg.encoder_layers)]
        self.decoder_blocks = [
            transformer.Block(units, cfg.heads, cfg.dropout, cross=True, products=self.products,
                              name=f"decoder_block_{i}")
            for i in range(cfg.decoder_layers)]
        self.encoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")
        self.decoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="decoder_norm")
        if cfg.tie_output:
            self.pre_output = keras.layers.Dense(cfg.embedding_dim, use_bias=False,
                                                 name="pre_output")
        else:
            self.output_layer = keras.layers.Dense(cfg.vocab_size, name="output")
        self._build_weights()
        self._decoder_sequences = _Untracked([])

    def _build_weights(self) -> None:
        """Create every weight now: variables cannot be created inside the decoding loop."""
        cfg = self.config
        if self.transformer:
            self.source_embedding.build((None, None))
            self.target_embedding.build((None, None))
            if self.embed_in is not None:
                self.embed_in.build((None, None, cfg.embedding_dim))
            for block in (*self.encoder_blocks, *self.decoder_blocks):
                block.build()
            self.encoder_norm.build((None, None, cfg.units))
            self.decoder_norm.build((None, None, cfg.units))
            self._build_output(cfg)
            self.built = True
            return
        emb, units = cfg.embedding_dim, cfg.units
        self.source_embedding.build((None, None))
        self.target_embedding.build((None, None))
        width = emb
        for rnn in self.encoder_rnns:
            rnn.build((None, None, width))
            width = units
        self.bridge.build((None, units))
        width = self._fixed_input_width() + (units if cfg.input_feeding else 0)
        for cell in self.decoder_cells:
            cell.build((None, width))
            width = units
        self.attentional.build((None, units if self.scorer is None else 2 * units))
        self._build_output(cfg)
        if self.copy_gate is not None:
            self.copy_gate.build((None, 2 * units + emb))
        self.built = True

    def _build_output(self, cfg: ModelConfig) -> None:
        """The output projection from the decoder's `units`-wide vectors to the vocabulary."""
        if cfg.tie_output:
            self.pre_output.build((None, cfg.units))
            self.output_bias = self.add_weight(
                shape=(cfg.vocab_size,), initializer="zeros", name="output_bias"
            )
        else:
            self.output_layer.build((None, cfg.units))

    # --- encoder -------------------------------------------------------------------------

    def encode(self, source_ids: tf.Tensor, training: bool = False) -> tuple[State, Context]:
        """Run the encoder once; returns the decoder's initial state and the fixed context."""
        state, context, _ = self.encode_with_first_layer(source_ids, training)
        return state, context

    def encode_with_first_layer(
        self, source_ids: tf.Tensor, training: bool = False
    ) -> tuple[State, Context, tf.Tensor]:
        """`encode`, and the first encoder layer's outputs [B,S,units] (the forward
        direction's in the first units/2 columns, the backward one's after them): what the
        encoder's language models read (`nlp.model.language_models`). Deeper layers read
        both directions, so only the first layer's directions are language models."""
        source_ids = tf.cast(source_ids, tf.int32)
        mask = tf.not_equal(source_ids, PAD_ID)
        x = self.dropout(self.source_embedding(self._in_vocab(source_ids)), training=training)
        if self.transformer:
            return self._encode_transformer(source_ids, mask, x, training)
        first = None
        for rnn in self.encoder_rnns:
            if self.recurrence == "keras":
                sequence, forward_h, backward_h = recurrence.keras_bidirectional(rnn, x, mask)
            else:
                sequence, forward_h, backward_h = recurrence.bidirectional(
                    rnn, x, mask, self.products
                )
            first = sequence if first is None else first
            x = self.dropout(sequence, training=training)
        memory = sequence
        summary = tf.concat([forward_h, backward_h], axis=-1)
        init = tf.split(
            self.bridge(summary),
            self.states_per_layer * self.config.decoder_layers,
            axis=-1,
        )
        state: State = {f"rnn_{i}": s for i, s in enumerate(init)}
        if self.config.input_feeding:
            state["feed"] = tf.zeros_like(init[0])
        if self.config.coverage:  # attention paid so far to each source position
            state["coverage"] = tf.zeros(tf.shape(source_ids), memory.dtype)
        context: Context = {"memory": memory, "mask": mask, "source_ids": source_ids}
        if self.scorer is not None:
            context["keys"] = self.scorer.keys(memory, self.products)
        if self.config.peek:
            context["summary"] = summary
        return state, context, first

    def _encode_transformer(
        self, source_ids: tf.Tensor, mask: tf.Tensor, embedded: tf.Tensor, training: bool
    ) -> tuple[State, Context, tf.Tensor]:
        """`encode_with_first_layer` of architecture=transformer. The state is the decoder's
        cache of keys and values, empty, and the slot the first token writes
        (`transformer.Block.step`); the context holds each decoder layer's keys and values of
        the encoder's output."""
        x = self._positioned(embedded, tf.constant(0))
        allowed = mask[:, None, :]
        first = None
        for block in self.encoder_blocks:
            x, _ = block.sequence(x, allowed, None, None, training)
            first = x if first is None else first
        memory = self.encoder_norm(x)
        context: Context = {"memory": memory, "mask": mask, "source_ids": source_ids}
        batch = tf.shape(source_ids)[0]
        slots = self.config.decoder_positions
        state: State = {"slot": tf.one_hot(tf.zeros([batch], tf.int32), slots, dtype=x.dtype)}
        empty = tf.zeros(tf.stack([batch, slots, self.config.units]), x.dtype)
        for i, block in enumerate(self.decoder_blocks):
            context[f"keys_{i}"], context[f"values_{i}"] = block.memory(memory)
            state[f"cache_keys_{i}"], state[f"cache_values_{i}"] = empty, empty
        return state, context, first

    def _positioned(self, embedded: tf.Tensor, first: tf.Tensor) -> tf.Tensor:
        """Embeddings [B,T,E] (or [B,1,E] at decoding position `first`, [B]) as the
        Transformer reads them: at its width, scaled by its square root, plus positions."""
        x = self.embed_in(embedded) if self.embed_in is not None else embedded
        units = self.config.units
        if first.shape.rank == 1:
            where = transformer.positions(first, 1, units)[:, None, :]
        else:
            where = transformer.positions(first, tf.shape(x)[1], units)[None]
        return x * (units ** 0.5) + tf.cast(where, x.dtype)

    # --- one decoder step (generation) -----------------------------------------------------

    def decode_step(
        self, prev_ids: tf.Tensor, state: State, context: Context, training: bool = False
    ) -> tuple[tf.Tensor, State, tf.Tensor]:
        """One output token: (log_probs [B,V'], new state, attention weights [B,S])."""
        if self.transformer:
            return self._transformer_step(prev_ids, state, context)
        embedded = self._embed_targets(prev_ids, training)
        x = self._with_summary(embedded, context)
        if self.config.input_feeding:
            x = tf.concat([x, state["feed"]], axis=-1)
        new_state: State = {}
        for i, cell in enumerate(self.decoder_cells):
            names = self._state_names(i)
            h, cell_states = cell(x, [state[n] for n in names], training=training)
            new_state.update(zip(names, cell_states, strict=True))
            x = self.dropout(h, training=training) if i + 1 < len(self.decoder_cells) else h
        context_vector, weights = self._attend(h, context, state.get("coverage"))
        attentional = self._attentional(context_vector, h)
        if self.config.input_feeding:
            new_state["feed"] = attentional
        if self.config.coverage:
            new_state["coverage"] = state["coverage"] + weights
        outputs = DecoderOutputs(
            logits=self._project(self.dropout(attentional, training=training)),
            attention=weights,
            gate=self._gate(context_vector, h, embedded),
            source_ids=context["source_ids"],
        )
        return log_probabilities(outputs, self.config.vocab_size), new_state, weights

    def _transformer_step(
        self, prev_ids: tf.Tensor, state: State, context: Context
    ) -> tuple[tf.Tensor, State, tf.Tensor]:
        """`decode_step` of architecture=transformer: the token goes through every decoder
        layer at its slot; the slot moves one on (staying on the last once there: a reply
        longer than `model.decoder_positions` overwrites its last position)."""
        slot = state["slot"]
        x = self._positioned(self._embed_targets(prev_ids, False)[:, None, :],
                             tf.argmax(slot, axis=-1, output_type=tf.int32))
        source_allowed = context["mask"][:, None, :]
        new_state: State = {}
        weights = tf.zeros_like(source_allowed[:, 0], x.dtype)
        for i, block in enumerate(self.decoder_blocks):
            names = (f"cache_keys_{i}", f"cache_values_{i}")
            x, cache, weights = block.step(
                x, (state[names[0]], state[names[1]]), slot,
                (context[f"keys_{i}"], context[f"values_{i}"]), source_allowed)
            new_state.update(zip(names, cache, strict=True))
        last = slot[:, -1:]
        new_state["slot"] = tf.concat([tf.zeros_like(last), slot[:, :-1]], axis=1) + tf.concat(
            [tf.zeros_like(slot[:, :-1]), last], axis=1)
        features = self.decoder_norm(x)[:, 0]
        if self.config.tie_output:
            features = self.pre_output(features)
        outputs = DecoderOutputs(logits=self._project_features(features), attention=weights,
                                 gate=None, source_ids=context["source_ids"])
        return log_probabilities(outputs, self.config.vocab_size), new_state, weights

    # --- teacher forcing (training, scoring) ---------------------------------------------

    def teacher_forcing(
        self, source_ids: tf.Tensor, target_in: tf.Tensor, training: bool = False
    ) -> DecoderOutputs:
        """Logits [B,T,V] (and copy inputs) for target_in = <s> y1 .. y(T-1).

        Only the recurrence runs step by step; the output projection, half of the model's
        arithmetic, is ONE [B*T, H] x [H, V] matmul after the loop, and the loss is taken
        from the logits (`nlp.model.losses`) without building a [B,T,V'] log-prob tensor.
        Without input feeding (and coverage, which also makes each step's attention depend
        on the previous ones) the recurrence runs over the whole target at once.
        """
        state, context = self.encode(source_ids, training=training)
        return self.teacher_forcing_encoded(state, context, target_in, training=training)

    def teacher_forcing_encoded(
        self, state: State, context: Context, target_in: tf.Tensor, training: bool = False
    ) -> DecoderOutputs:
        """`teacher_forcing` from the encoder's outputs (`encode`): scoring many targets of
        one source (Hits@1's K candidates, an n-best list) encodes the source once and
        gathers its rows of `state` and `context` for each target."""
        features, weights, gate = self.teacher_forcing_features(
            state, context, target_in, training=training)
        return DecoderOutputs(
            logits=self._project_features(features),
            attention=weights,
            gate=gate,
            source_ids=context["source_ids"],
        )

    def teacher_forcing_features(
        self, state: State, context: Context, target_in: tf.Tensor, training: bool = False
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
        """What the output projection multiplies ([B,T,H'], `output_parameters`), the
        attention and the copy gate: `teacher_forcing_encoded` before its projection, so a
        sampled softmax (`nlp.model.losses.sampled_logits`) can project onto a few
        columns instead of the whole vocabulary."""
        embedded = self._embed_targets(target_in, training)  # [B,T,E]
        if self.transformer:
            return self._transformer_features(embedded, context, training)
        inputs = self._with_summary(embedded, context)  # [B,T,E(+H with peek)]
        if self.config.input_feeding or self.config.coverage:
            attentional, context_vectors, top, weights = self._stepwise_recurrence(
                inputs, state, context, training
            )
        else:
            top = self._unfed_recurrence(inputs, state, training)
            context_vectors, weights = self._attend(top, context)
            attentional = self._attentional(context_vectors, top, self.products)
        features = self.dropout(attentional, training=training)
        if self.config.tie_output:
            features = self.pre_output(features)
        return features, weights, self._gate(context_vectors, top, embedded)

    def _transformer_features(
        self, embedded: tf.Tensor, context: Context, training: bool
    ) -> tuple[tf.Tensor, tf.Tensor, None]:
        """`teacher_forcing_features` of architecture=transformer: every target position at
        once, each seeing itself and those before it."""
        x = self._positioned(embedded, tf.constant(0))
        steps = tf.shape(x)[1]
        causal = tf.cast(tf.linalg.band_part(tf.ones(tf.stack([steps, steps])), -1, 0),
                         tf.bool)[None]
        source_allowed = context["mask"][:, None, :]
        weights = None
        for i, block in enumerate(self.decoder_blocks):
            x, weights = block.sequence(
                x, causal, (context[f"keys_{i}"], context[f"values_{i}"]), source_allowed,
                training)
        features = self.dropout(self.decoder_norm(x), training=training)
        if self.config.tie_output:
            features = self.pre_output(features)
        assert weights is not None  # at least one decoder layer (checked)
        return features, weights, None

    def output_parameters(self) -> tuple[tf.Tensor, tf.Tensor]:
        """The output projection's kernel [H', V] and bias [V], which map
        `teacher_forcing_features` to the vocabulary's logits."""
        if self.config.tie_output:
            table = tf.transpose(tf.convert_to_tensor(self.target_embedding.embeddings))
            return table, tf.convert_to_tensor(self.output_bias)
        layer = self.output_layer
        return tf.convert_to_tensor(layer.kernel), tf.convert_to_tensor(layer.bias)

    def call(self, inputs: tuple[tf.Tensor, tf.Tensor], training: bool = False) -> tf.Tensor:
        """Teacher forcing as full log-probs [B,T,V'] (tests, analysis; training uses logits)."""
        source_ids, target_in = inputs
        outputs = self.teacher_forcing(source_ids, target_in, training=training)
        return log_probabilities(outputs, self.config.vocab_size)

    def _stepwise_recurrence(
        self, embedded: tf.Tensor, state: State, context: Context, training: bool
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """Input feeding (each step needs the previous attentional vector) or coverage (each
        step's attention needs the previous ones): attention runs inside the loop. The
        share of the first cell's input projection known before the loop (embeddings, and
        the encoder summary with peek) is one matmul before it. `model.recurrence` does not
        change this loop: each step's input depends on the previous step's attention, so
        no Keras layer (and no cuDNN kernel) can run it.
        Returns attentional, context vectors (zeros without attention), top RNN outputs
        [B,T,H] and attention weights [B,T,S]."""
        fixed = self._fixed_input_width()
        feeding = self.config.input_feeding
        first = self.decoder_cells[0]
        projected = recurrence.project_inputs(
            first, embedded, rows=slice(0, fixed), operands=self.products
        )
        feed_kernel = recurrence.feed_kernel(first, slice(fixed, None), embedded.dtype)
        if self._has_written_out_loop():
            time_major = tf.transpose(projected, [1, 0, 2])
            attention = AttentionInputs(
                context["keys"], context["memory"],
                tf.cast(tf.convert_to_tensor(self.attentional.kernel), embedded.dtype),
                context["mask"],
            )
            recurrent, recurrent_bias = recurrence.recurrent_weights(first, embedded.dtype)
            if recurrent_bias is not None:  # GRU
                values = gru_attention_loop(
                    time_major, feed_kernel, recurrent, recurrent_bias, state["rnn_0"],
                    state["feed"], attention, self.products,
                )
            else:
                values = lstm_attention_loop(
                    time_major, feed_kernel, state["rnn_0"], state["rnn_1"], state["feed"],
                    attention, self.products,
                )
            attentional, context_vectors, top, weights = (
                tf.transpose(v, [1, 0, 2]) for v in values
            )
            return attentional, context_vectors, top, weights
        projected = recurrence.time_major(projected)
        steps = tf.shape(embedded)[1]
        collected = [tf.TensorArray(embedded.dtype, size=steps) for _ in range(4)]

        def body(t, state, collected):  # type: ignore[no-untyped-def]
            new_state: State = {}
            first_state = [state[n] for n in self._state_names(0)]
            if feeding:  # the first layer's input: projected embedding + feed vector
                h, cell_state = recurrence.step_with_extra_input(
                    first, projected.read(t), first_state, state["feed"], feed_kernel
                )
            else:
                h, cell_state = recurrence.step(first, projected.read(t), first_state)
            new_state.update(zip(self._state_names(0), cell_state, strict=True))
            for i, cell in enumerate(self.decoder_cells[1:], start=1):
                names = self._state_names(i)
                x = recurrence.project_inputs(cell, self.dropout(h, training=training))
                h, cell_state = recurrence.step(cell, x, [state[n] for n in names])
                new_state.update(zip(names, cell_state, strict=True))
            context_vector, weights = self._attend(h, context, state.get("coverage"))
            attentional = self._attentional(context_vector, h)
            if context_vector is None:
                context_vector = tf.zeros_like(h)
            if feeding:
                new_state["feed"] = attentional
            if "coverage" in state:
                new_state["coverage"] = state["coverage"] + weights
            values = (attentional, context_vector, h, tf.cast(weights, embedded.dtype))
            collected = [c.write(t, v) for c, v in zip(collected, values, strict=True)]
            return t + 1, new_state, collected

        _, _, collected = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), state, collected),
            maximum_iterations=steps,  # lets XLA (train.jit_compile) size the gradient stacks
        )
        attentional, context_vectors, top, weights = (
            tf.transpose(c.stack(), [1, 0, 2]) for c in collected
        )
        return attentional, context_vectors, top, weights

    def _has_written_out_loop(self) -> bool:
        """Whether teacher forcing runs `lstm_attention_loop` or `gru_attention_loop` (their
        gradients written out): one input-feeding decoder layer (the default decoder) with
        Luong dot or general attention and no coverage. Other variants let TensorFlow
        differentiate the loop."""
        cfg = self.config
        return (
            cfg.input_feeding and cfg.decoder_layers == 1
            and cfg.attention in ("dot", "general") and not cfg.coverage
        )

    def _unfed_recurrence(self, embedded: tf.Tensor, state: State, training: bool) -> tf.Tensor:
        """No input feeding: each decoder layer runs over the whole target in one loop (a
        `keras.layers.RNN` over the cell with `model.recurrence=keras`)."""
        x = embedded
        for i, cell in enumerate(self.decoder_cells):
            states = [state[n] for n in self._state_names(i)]
            if self.recurrence == "keras":
                x, *_ = self._decoder_sequences.layers[i](x, initial_state=states)
            else:
                x, _ = recurrence.run(cell, x, states, self.products)
            if i + 1 < len(self.decoder_cells):
                x = self.dropout(x, training=training)
        return x

    # --- shared pieces ---------------------------------------------------------------------

    def _fixed_input_width(self) -> int:
        """Width of the first decoder cell's input known before decoding: embedding (+ peek)."""
        return self.config.embedding_dim + (self.config.units if self.config.peek else 0)

    def _with_summary(self, embedded: tf.Tensor, context: Context) -> tf.Tensor:
        """peek: the encoder summary [B,H] joined to each step's embedding ([B,E] or [B,T,E])."""
        if not self.config.peek:
            return embedded
        summary = tf.cast(context["summary"], embedded.dtype)
        if embedded.shape.rank == 3:
            summary = tf.tile(summary[:, None, :], tf.stack([1, tf.shape(embedded)[1], 1]))
        return tf.concat([embedded, summary], axis=-1)

    def _attend(
        self, query: tf.Tensor, context: Context, coverage: tf.Tensor | None = None
    ) -> tuple[tf.Tensor | None, tf.Tensor]:
        """(context vector or None without attention, weights [B,(T,)S]).

        Without attention the weights are uniform over the real source tokens (see the
        module docstring): what the decoder knows of the source is the summary alone.
        """
        if self.scorer is None:
            mask = tf.cast(context["mask"], query.dtype)
            uniform = mask / tf.maximum(tf.reduce_sum(mask, axis=-1, keepdims=True), 1.0)
            if query.shape.rank == 3:
                uniform = tf.tile(uniform[:, None, :], tf.stack([1, tf.shape(query)[1], 1]))
            return None, uniform
        return attend(
            self.scorer, query, context["keys"], context["memory"], context["mask"], coverage
        )

    def _attentional(
        self, context_vector: tf.Tensor | None, h: tf.Tensor, operands: tf.DType | None = None
    ) -> tf.Tensor:
        """tanh(W [c; h]) (Luong), or tanh(W h) without attention: the output vector.
        `operands`: the product's operand dtype (`recurrence.product`), given where it runs
        once over all steps (teacher forcing without input feeding)."""
        x = h if context_vector is None else tf.concat([context_vector, h], axis=-1)
        return tf.tanh(recurrence.product(x, self.attentional.kernel, operands))

    def _embed_targets(self, ids: tf.Tensor, training: bool) -> tf.Tensor:
        ids = self._in_vocab(tf.cast(ids, tf.int32))
        return self.dropout(self.target_embedding(ids), training=training)

    def _state_names(self, layer: int) -> list[str]:
        per = self.states_per_layer
        return [f"rnn_{layer * per + k}" for k in range(per)]

    def _gate(
        self, context_vector: tf.Tensor | None, h: tf.Tensor, embedded: tf.Tensor
    ) -> tf.Tensor | None:
        """Probability of generating rather than copying (None without copying)."""
        if self.copy_gate is None:
            return None
        return tf.cast(self.copy_gate(tf.concat([context_vector, h, embedded], axis=-1)),
                       tf.float32)

    def _project(self, attentional: tf.Tensor) -> tf.Tensor:
        """Attentional vectors [..., H] -> vocabulary logits [..., V] (float32)."""
        features = self.pre_output(attentional) if self.config.tie_output else attentional
        return self._project_features(features)

    def _project_features(self, features: tf.Tensor) -> tf.Tensor:
        """`teacher_forcing_features` [..., H'] -> vocabulary logits [..., V] (float32)."""
        kernel, bias = self.output_parameters()
        logits = recurrence.product(features, kernel, self.products)
        logits += tf.cast(bias, features.dtype)
        return tf.cast(logits, tf.float32)

    def _in_vocab(self, ids: tf.Tensor) -> tf.Tensor:
        """Extended (copy) ids are embedded as <unk>."""
        return tf.where(ids >= self.config.vocab_size, tf.constant(UNK_ID, ids.dtype), ids)
