"""Decoding speed of the shared decoder against the tutorial's per-token `predict()` loop.

Run from the repository root: `python -m benchmarks.decode_speed` (a few minutes on 2 cores).
It decodes as the commands do by default (the plain compiled graph,
`nlp.decoding.options.XLA_BY_DEFAULT`); `--xla` times the XLA-compiled decoder instead. The
real `Seq2Seq` at the default size (embedding and hidden 256, vocabulary 8000) with random
weights decodes sources of 30 tokens into exactly 15 tokens (min_length = max_length, since
random weights would end at arbitrary points). Each variant runs in its own process so
that its peak memory is its own. Prints a table and writes benchmarks/results/decode_speed.json.
Each timed loop runs `REPEATS` times and the fastest is kept, which filters out most of the
noise from other jobs on a shared machine; it is still not a test (absolute numbers vary).

The reference wraps the real `decode_step` in a functional Keras model whose inputs are the
previous token plus every state and context tensor (8 arrays here); `predict()` overhead grows
with the number of inputs (about 50 ms for one array, about 95 ms for eight on this machine),
so this reference is slower than the 3-input decoder of the attention-less tutorials.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import (
    RESULTS_DIR,
    format_table,
    peak_rss_mb,
    run_isolated,
    timed,
    write_json,
)
from benchmarks.train_throughput import matmul_peak
from nlp.decoding.options import XLA_BY_DEFAULT

VOCAB, HIDDEN, SOURCE_LEN, OUTPUT_LEN = 8000, 256, 30, 15
REPEATS = 3

# variant -> (strategy, batch size, sentences timed after the first call)
VARIANTS: dict[str, tuple[str, int, int]] = {
    "predict_loop": ("greedy", 1, 3),
    "greedy_b1": ("greedy", 1, 30),
    "beam5_b1": ("beam", 1, 30),
    "greedy_b64": ("greedy", 64, 256),
    "beam5_b64": ("beam", 64, 256),
}
COLUMNS = [
    ("variant", "variant"),
    ("ms_per_sentence", "ms/sentence"),
    ("sentences_per_s", "sentences/s"),
    ("speedup_vs_predict_loop", "x predict loop"),
    ("first_call_s", "first call s"),
    ("peak_rss_mb", "peak RSS MiB"),
]


def _model() -> Any:
    import keras

    from nlp.model.seq2seq import Seq2Seq
    from nlp.util.config import ModelConfig

    keras.utils.set_random_seed(0)
    return Seq2Seq(ModelConfig(vocab_size=VOCAB, embedding_dim=HIDDEN, units=HIDDEN, dropout=0.0))


def _sources(count: int) -> np.ndarray:
    return np.random.default_rng(0).integers(4, VOCAB, (count, SOURCE_LEN), dtype=np.int32)


def measure(variant: str, xla: bool = XLA_BY_DEFAULT) -> dict[str, Any]:
    """Time one variant in this process: the first call apart, then the steady state."""
    strategy, batch, count = VARIANTS[variant]
    model = _model()
    sources = _sources(batch + count)
    if variant == "predict_loop":
        decode_batch = _predict_loop(model)
    else:
        decode_batch = _decoder_call(model, strategy, xla)
    _, first_call = timed(lambda: decode_batch(sources[:batch]))

    def timed_loop() -> None:
        for offset in range(batch, batch + count, batch):
            decode_batch(sources[offset : offset + batch])

    seconds = min(timed(timed_loop)[1] for _ in range(REPEATS)) / count
    return {
        "variant": variant,
        "ms_per_sentence": seconds * 1000,
        "sentences_per_s": 1 / seconds,
        "first_call_s": first_call,
        "peak_rss_mb": peak_rss_mb(),
    }


def _decoder_call(model: Any, strategy: str, xla: bool) -> Callable[[np.ndarray], object]:
    from nlp.decoding import DecodeOptions, Decoder

    decoder = Decoder(model, jit_compile=xla)
    options = DecodeOptions(
        strategy=strategy, beam_size=5, max_length=OUTPUT_LEN, min_length=OUTPUT_LEN
    )
    return lambda batch: decoder.decode(batch, options)


def projection_ms(rows: int, xla: bool = XLA_BY_DEFAULT) -> float:
    """Milliseconds of the decoder's per-step output projection ([rows, HIDDEN] x [HIDDEN,
    VOCAB], then log-softmax) alone, compiled as the figures' decoder is: beam 5 at
    batch 1 runs it on 5 rows where greedy runs it on 1, and a product with a few rows
    costs more than one with one row (the kernel packs the whole weight matrix for it), so
    the ratio of the two bounds the beam's own ratio from below."""
    import tensorflow as tf

    weights = tf.random.normal([HIDDEN, VOCAB])
    hidden = tf.random.normal([rows, HIDDEN])
    step = tf.function(lambda h: tf.nn.log_softmax(tf.matmul(h, weights))[:, 0],
                       jit_compile=xla)
    step(hidden).numpy()
    count = 200
    best = min(timed(lambda: [step(hidden).numpy() for _ in range(count)])[1]
               for _ in range(REPEATS))
    return 1000 * best / count


def _predict_loop(model: Any) -> Callable[[np.ndarray], object]:
    """The tutorial's approach: an encoder model and a one-step decoder model, both plain
    Keras functional models, and `predict()` called once per output token."""
    import keras
    import tensorflow as tf

    from nlp.tokenizers.specials import BOS_ID, EOS_ID

    class Encode(keras.layers.Layer):
        def call(self, source_ids: Any) -> Any:
            return model.encode(source_ids)

    class Step(keras.layers.Layer):
        def call(self, inputs: Any) -> Any:
            prev_ids, state, context = inputs
            return model.decode_step(prev_ids, state, context)

    def placeholder(x: tf.Tensor) -> Any:
        return keras.Input(shape=x.shape[1:], dtype=x.dtype.name)

    source_in = keras.Input(shape=(None,), dtype="int32")
    encoder = keras.Model(source_in, Encode()(source_in))
    state, context = model.encode(tf.constant(_sources(1)))
    step_in = (
        keras.Input(shape=(), dtype="int32"),
        tf.nest.map_structure(placeholder, state),
        tf.nest.map_structure(placeholder, context),
    )
    stepper = keras.Model(step_in, Step()(step_in))

    def decode(batch: np.ndarray) -> list[list[int]]:
        state, context = encoder.predict(batch, verbose=0)
        prev = np.full(len(batch), BOS_ID, np.int32)
        outputs = []
        for _ in range(OUTPUT_LEN):
            log_probs, state, _ = stepper.predict([prev, state, context], verbose=0)
            log_probs[:, EOS_ID] = -np.inf  # min_length = max_length, as for the decoder
            prev = log_probs.argmax(axis=-1).astype(np.int32)
            outputs.append(prev)
        return np.stack(outputs, axis=1).tolist()

    return decode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--xla", action="store_true",
                        help="time the XLA-compiled decoder (`s2s ... --xla`), not the default")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    peaks = [run_isolated(matmul_peak, 2048, 10, "float32")]
    rows = []
    for variant in args.variants:
        rows.append(run_isolated(measure, variant, args.xla))
        print(f"measured {variant}", flush=True)
    projection = {rows: round(run_isolated(projection_ms, rows, args.xla), 3) for rows in (1, 5)}
    peaks.append(run_isolated(matmul_peak, 2048, 10, "float32"))
    reference = next((r["ms_per_sentence"] for r in rows if r["variant"] == "predict_loop"), None)
    for row in rows:
        if reference is not None:
            row["speedup_vs_predict_loop"] = reference / row["ms_per_sentence"]
    beam, greedy = (next((r["ms_per_sentence"] for r in rows if r["variant"] == name), None)
                    for name in ("beam5_b1", "greedy_b1"))
    ratio = round(beam / greedy, 2) if beam and greedy else None
    write_json(RESULTS_DIR / ("decode_speed_xla.json" if args.xla else "decode_speed.json"), {
        "xla": args.xla,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "rows": rows,
        "beam5_over_greedy_at_batch_1": ratio,
        "projection_ms": {"rows_1": projection[1], "rows_5": projection[5],
                          "ratio": round(projection[5] / projection[1], 2)},
        "matmul_peak_gflops": {"size": 2048, "dtype": "float32",
                               "before": round(peaks[0], 1), "after": round(peaks[1], 1)},
    })
    print(format_table(rows, COLUMNS))
    print(f"beam 5 / greedy at batch 1: {ratio}; matmul peak (float32, 2048^3): "
          f"{peaks[0]:.1f} GFLOP/s before, {peaks[1]:.1f} after")
    print(f"output projection and log-softmax alone: {projection[1]} ms for 1 row, "
          f"{projection[5]} ms for 5 ({projection[5] / projection[1]:.2f}x)")
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
