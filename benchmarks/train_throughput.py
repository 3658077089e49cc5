"""Training throughput as a share of the machine's own matmul peak.

Default model size (embedding and hidden 256, vocabulary 8000, batch 64) on synthetic batches
of source length 40 and target length 15, trained through the project's own `Trainer`: what a
user's `s2s train` step costs, without corpus reading or tokenization. One row per
configuration: cell (lstm, gru) x input feeding (on, off) x copy (off, on).

Machines of the same kind differ by up to 4x in matmul speed, so each run also times a large
TensorFlow matmul (2048 x 2048 x 2048, float32) and reports `peak_share` = achieved GFLOP/s /
that matmul's GFLOP/s. The model's FLOPs are counted analytically (`train_flops_per_sample`):

    forward, per sample (S source tokens, T decoder steps = target length + 1, E embedding,
    U hidden, V vocabulary, G gates = 4 for LSTM / 3 for GRU, u = U/2 per encoder direction):
      encoder layer l, both directions:  S * 2 * 2 * (in_l + u) * G * u   (in_1 = E, else U)
      bridge:                            2 * U * (U * states per layer * decoder layers)
      attention keys (general/bahdanau): 2 * S * U * U
      decoder layer 1, per step:         2 * (E + U [input feeding] + U) * G * U
      decoder layer k > 1, per step:     2 * (U + U) * G * U
      attention per step:                4 * S * U  (+ 2 * U * U + 2 * S * U for bahdanau)
      attentional layer per step:        2 * 2U * U
      output projection per step:        2 * U * V   (tied: 2 * U * E + 2 * E * V)
      copy gate per step:                2 * (2U + E)
    training = 3 x forward (the backward pass costs about twice the forward pass).
  Element-wise work (activations, softmax, the copy scatter) is not counted, so the share is
  a lower bound of the machine's real use.

Each row trains in the dtypes `s2s train` gives it on this machine (`train.precision`,
default `auto`: on a CPU with bfloat16 instructions the input and output projections and the
recurrences' per-step products take bfloat16 operands, see `nlp.training.precision`;
`--precision float32` measures float32 throughout). `computes in` is the dtype of those
products. `peak share` is always
against the float32 matmul (the figure the project's targets are stated in); the run also
times the same matmul in bfloat16, and `share of its dtype's peak` is the achieved rate
against the peak of the dtype of those products, so a bfloat16 row's use of the machine is
not overstated (it understates it: attention and the kernels' gradients stay float32).

`matmul floor ms` is what the step's matrix products alone take on this machine, each shape
timed on its own with TensorFlow's kernel in the operand dtype the step gives it (the
projections and the loops' per-step products in the row's `computes in`, the rest in
float32; `training_matmuls` lists them: the large ones once, the recurrences' per-step ones
inside a `tf.while_loop`),
and `floor peak share` the share a step that took only that long would reach: how far any
implementation of this model on TensorFlow's matmul kernels could go, with no element-wise
work and no op overhead.

`--varied` draws each example's source and target length uniformly from a quarter of the
given length up to it, and the trainer buckets them as `s2s train` does: batches of many
shapes, so costs paid per batch shape show (a sparse embedding gradient made the XLA
optimizer update compile once per shape; the fixed-shape rows could not show it). FLOPs are
then counted per batch from its padded shape; the matmul floor is left out.

    python -m benchmarks.train_throughput [--steps 40] [--warmup 5] [--code DIR] [--jit]
        [--varied] [--only-default] [--floor-detail] [--precision auto|float32|bfloat16]
        [--profile N] [--update N]

`--profile N` traces N more steps of each row with `tf.profiler` after the timed ones and
prints where their time goes by kind of op (`benchmarks.op_profile`: matrix products,
element-wise, reductions, data movement, loop control, the executor's own overhead).
`--update N` then times the optimizer's update alone (`time_update`), as trained and as a
plain graph, against one thread's copy bandwidth measured in the same process.

`--floor-detail` prints each row's matrix products with the milliseconds and GFLOP/s each
shape reached (also in the JSON as `matmul_floor_products`). Each mode writes its own file
(`results_path`): the full table `train_throughput.json`, `--only-default`
`train_throughput_default.json`, `--precision float32` adds `_float32`, and so on.

`--code DIR` measures another checkout of the project (e.g. a worktree of an older commit)
with this same script, so old and new figures come from one run on one machine. It needs
the trainer's `train_batch` and the NumPy batch plan (`EncodedExamples`, 8e9963e); older
commits, b60f120 among them, are measured with their own copy of this script.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import (
    RESULTS_DIR,
    format_table,
    peak_rss_mb,
    run_isolated,
    timed,
    write_json,
)

VOCAB = 8000
HEADLINE_VOCAB = 12000  # the headline preset's vocab.max_size
PEAK_DTYPES = ("float32", "bfloat16")
CONFIGURATIONS = [
    {"cell": cell, "input_feeding": feeding, "copy": copy}
    for cell in ("lstm", "gru")
    for feeding in (True, False)
    for copy in (False, True)
]


def train_flops_per_sample(model: Any, source_len: int, target_len: int) -> float:
    """Training FLOPs (forward + backward) of one sample; the formula is in the docstring."""
    S, T = source_len, target_len + 1
    E, U, V = model.embedding_dim, model.units, model.vocab_size
    G = 4 if model.cell == "lstm" else 3
    u = U // 2
    forward = 0.0
    for layer in range(model.encoder_layers):
        width = E if layer == 0 else U
        forward += S * 2 * 2 * (width + u) * G * u
    forward += 2 * U * (U * (2 if model.cell == "lstm" else 1) * model.decoder_layers)
    if model.attention in ("general", "bahdanau"):
        forward += 2 * S * U * U
    per_step = 2 * (E + (U if model.input_feeding else 0) + U) * G * U
    per_step += (model.decoder_layers - 1) * 2 * (U + U) * G * U
    per_step += 4 * S * U + (2 * U * U + 2 * S * U if model.attention == "bahdanau" else 0)
    per_step += 2 * 2 * U * U
    per_step += 2 * U * E + 2 * E * V if model.tie_output else 2 * U * V
    per_step += 2 * (2 * U + E) if model.copy else 0
    forward += T * per_step
    return 3.0 * forward


Matmul = tuple[int, int, int, int, int]  # (count, batch, m, k, n): count x [batch] [m,k] x [k,n]


def product_flops(product: Matmul) -> int:
    """FLOPs of one entry of `training_matmuls`: count x [batch] [m,k] x [k,n]."""
    count, batch, m, k, n = product
    return 2 * count * batch * m * k * n


def _dense(m: int, k: int, n: int, batch: int = 1) -> list[Matmul]:
    """x [m,k] x w [k,n] and its gradient's two products, dx = dy w^T and dw = x^T dy."""
    return [(1, batch, m, k, n), (1, batch, m, n, k), (1, batch, k, m, n)]


def _recurrent(steps: int, rows: int, k: int, n: int) -> tuple[list[Matmul], list[Matmul]]:
    """A loop's per-step product [rows,k] x [k,n] and its per-step input gradient (the
    loop's own products), and the kernel gradient taken once after the loop over all
    steps."""
    return [(steps, 1, rows, k, n), (steps, 1, rows, n, k)], [(1, 1, k, steps * rows, n)]


def training_matmuls(
    model: Any, batch: int, source_len: int, target_len: int, large: str = "float32",
    other: str = "float32",
) -> list[tuple[Matmul, str]]:
    """Every matrix product of one training step (forward and backward) as the project's
    model runs it: the big ones once over all steps, the recurrences' step by step; each
    with its operand dtype: `large` for the products that take `train.precision`'s operands
    (the input projections, the output projection, the keys and, without input feeding,
    the attentional layer: `recurrence.product`; the loops' per-step products with their
    kernels: `recurrence.loop_product`, and those kernels' gradients after the loops:
    `recurrence.kernel_gradient`), `other` (the model's compute dtype) for the rest:
    attention and the bridge.

    Covers the benchmark's configurations (one layer each side, dot or general attention,
    untied output); the copy gate's [.., 2U+E] x [2U+E, 1] products are left out."""
    B, S, T = batch, source_len, target_len + 1
    E, U, V = model.embedding_dim, model.units, model.vocab_size
    G = 4 if model.cell == "lstm" else 3
    u = U // 2
    products: list[Matmul] = []
    rounded: list[Matmul] = []  # those with `large` operands

    def recurrent(steps: int, rows: int, k: int, n: int) -> None:
        in_loop, after = _recurrent(steps, rows, k, n)
        rounded.extend(in_loop + after)

    for _ in range(2):  # encoder directions (two loops, which run at the same time)
        rounded += _dense(B * S, E, G * u)
        recurrent(S, B, u, G * u)
    products += _dense(B, U, U * (2 if model.cell == "lstm" else 1))  # bridge
    if model.attention == "general":
        rounded += _dense(B * S, U, U)  # keys
    rounded += _dense(B * T, E, G * U)  # decoder input projection, before the loop
    if model.input_feeding:  # attention in the loop
        if model.cell == "lstm":  # feed and h through one stacked kernel
            recurrent(T, B, 2 * U, G * U)
        else:  # GRU: the feed's and the recurrent product apart (the reset gate needs the latter)
            recurrent(T, B, U, G * U)
            recurrent(T, B, U, G * U)
        recurrent(T, B, 2 * U, U)  # the attentional layer
        products += [(2 * T, B, 1, U, S), (2 * T, B, 1, S, U), (2, B, S, T, U)]
    else:  # the recurrence alone in the loop, attention for all steps at once
        recurrent(T, B, U, G * U)
        rounded += _dense(B * T, 2 * U, U)  # the attentional layer over all steps
        products += _dense(T, U, S, batch=B) + _dense(T, S, U, batch=B)
    rounded += _dense(B * T, U, V)  # output projection
    return [(p, large) for p in rounded] + [(p, other) for p in products]


def matmul_floor(
    model: Any, batch: int, source_len: int, target_len: int, large: str = "float32",
    other: str = "float32",
) -> list[dict[str, Any]]:
    """What one training step's matrix products alone take on this machine, one entry per
    distinct product (count, batch, m, k, n; how often a step runs it; its milliseconds in
    all; its GFLOP/s), each shape timed on its own (the small per-step ones inside a
    `tf.while_loop`, as the model runs them). No element-wise work, no op overhead, no
    concurrency: what a perfect implementation of this model with TensorFlow's matmul
    kernels would still spend. The entries show which products run below the large matmul's
    rate, i.e. where the floor comes from. `large`, `other`: the operand dtypes (see
    `training_matmuls`); each entry says its dtype."""
    import tensorflow as tf

    def per_call(product: Matmul, dtype: str) -> float:
        count, b, m, k, n = product
        shape = [b] if b > 1 else []
        x = tf.cast(tf.random.normal([*shape, m, k]), dtype)
        w = tf.cast(tf.random.normal([*shape, k, n]), dtype)

        @tf.function
        def run(x: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
            if count == 1:
                return tf.matmul(x, w)[..., 0, 0]

            def body(i: tf.Tensor, total: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                # each product waits for the last one, as in a recurrence
                return i + 1, total + tf.matmul(x + (total * 0.0)[..., None, None], w)[..., 0, 0]

            zero = tf.zeros(shape, x.dtype)
            return tf.while_loop(lambda i, _: i < count, body, (0, zero))[1]

        run(x, w).numpy()
        return 1000 * min(timed(lambda: run(x, w).numpy())[1] for _ in range(10))

    products = Counter(training_matmuls(model, batch, source_len, target_len, large, other))
    entries = []
    for (product, dtype), times in products.items():  # each shape and dtype timed once
        ms = per_call(product, dtype) * times
        entries.append({
            "product": list(product), "dtype": dtype, "times": times, "ms": ms,
            "gflops": product_flops(product) * times / ms / 1e6,
        })
    return sorted(entries, key=lambda entry: -entry["ms"])


def matmul_peak(size: int = 2048, repeats: int = 10, dtype: str = "float32") -> float:
    """GFLOP/s of a large TensorFlow matmul on this machine, now (operands of `dtype`)."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal([size, size]), dtype)
    b = tf.cast(tf.random.normal([size, size]), dtype)
    product = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y), tf.float32)))
    float(product(a, b))  # trace and warm up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            float(product(a, b))
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * size**3 / best / 1e9


# bytes Adam moves per float32 weight: it reads the weight, its gradient and both moments and
# writes the weight and both moments back (a lower bound: the global-norm clipping's extra read
# of the gradient is not counted)
ADAM_BYTES_PER_WEIGHT = 7 * 4


def copy_bandwidth(megabytes: int = 200, repeats: int = 5) -> float:
    """GB/s of one thread copying an array far larger than the caches (bytes read plus
    written): the memory speed a one-thread element-wise pass over every weight can reach."""
    import numpy as np

    source = np.ones(megabytes * 2**20 // 4, np.float32)
    target = np.empty_like(source)
    best = min(timed(lambda: np.copyto(target, source))[1] for _ in range(repeats))
    return 2 * source.nbytes / best / 1e9


def time_update(trainer: Any, repeats: int) -> dict[str, float]:
    """The optimizer update alone (dense gradients, every trained variable): as the trainer
    runs it (`Trainer.update`: XLA for large models) and as a plain TensorFlow graph, in ms,
    with the GB/s its `ADAM_BYTES_PER_WEIGHT` make and this process's `copy_bandwidth`: an
    update near the copy bandwidth is bound by memory, not by its arithmetic or the executor."""
    import numpy as np
    import tensorflow as tf

    variables = trainer.variables
    gradients = [tf.fill(v.shape, tf.constant(1e-6, v.dtype)) for v in variables]
    graph = tf.function(lambda g: trainer.optimizer.apply(g, variables))

    def median_ms(update: Any) -> float:
        for _ in range(2):  # compiles
            update(gradients)
        return 1000 * float(np.median([timed(lambda: update(gradients))[1]
                                       for _ in range(repeats)]))

    weights = sum(int(np.prod(v.shape)) for v in variables)
    trained, plain = median_ms(trainer.update), median_ms(graph)
    return {
        "update_ms": trained,
        "update_graph_ms": plain,
        "update_gb_per_s": weights * ADAM_BYTES_PER_WEIGHT / trained / 1e6,
        "copy_gb_per_s": copy_bandwidth(),
    }


def measure(
    steps: int, warmup: int, source_len: int, target_len: int, settings: dict[str, Any],
    code: str | None, jit: bool, task: str | None = None, vocab: int = VOCAB,
    varied: bool = False, precision: str | None = None, profile: int = 0, update: int = 0,
) -> dict[str, Any]:
    if code:
        sys.path.insert(0, code)
    from contextlib import AbstractContextManager, nullcontext

    import keras
    import numpy as np

    from nlp.model import Seq2Seq
    from nlp.tokenizers.specials import EOS_ID
    from nlp.training.data import EncodedExamples
    from nlp.training.trainer import Trainer
    from nlp.util.config import ExperimentConfig, task_preset

    overrides = list(task_preset(task)) if task else []
    overrides += [f"model.vocab_size={vocab}", f"train.max_source_length={source_len}"]
    overrides += [f"model.{key}={value}" for key, value in settings.items()]
    if jit:
        overrides.append("train.jit_compile=true")
    if precision:
        overrides.append(f"train.precision={precision}")
    config = ExperimentConfig().with_overrides(overrides)
    scope: AbstractContextManager[None]
    try:  # the dtypes `s2s train` gives this config on this machine
        from nlp.training.precision import policy_scope, resolve

        try:  # auto races the products at the model's sizes (cached per machine)
            from nlp.training.precision import ProductSizes

            resolved, _ = resolve(config.train.precision, ProductSizes.of(config))
        except ImportError:  # checkouts that chose by the CPU's flags
            resolved = resolve(config.train.precision)  # type: ignore[call-arg,assignment]
        policy, products = resolved.policy, resolved.products
        scope = policy_scope(policy)
        extra = {"products": products}
    except ImportError:  # checkouts from before train.precision trained in float32
        policy, products, scope, extra = "float32", None, nullcontext(), {}
    rng = np.random.default_rng(0)

    def length(longest: int) -> int:
        return int(rng.integers(max(1, longest // 4), longest + 1)) if varied else longest

    examples = [
        (rng.integers(4, vocab, length(source_len)).tolist(),
         [*rng.integers(4, vocab, length(target_len)).tolist(), EOS_ID])
        for _ in range(config.train.batch_size * (steps + warmup + profile))
    ]
    with scope:
        model = Seq2Seq(config.model, **extra)
    trainer = Trainer(model, config.train, Path(tempfile.mkdtemp()), verbose=0)
    batches = list(EncodedExamples(examples).batches(trainer.batching, seed=1))
    start = time.perf_counter()
    for batch in batches[:warmup]:
        float(trainer.train_batch(*batch))
    first = time.perf_counter() - start
    measured = batches[warmup : warmup + steps]
    tokens = sum(int((batch[2] != 0).sum()) for batch in measured)
    start = time.perf_counter()
    losses = [trainer.train_batch(*batch) for batch in measured]
    float(losses[-1])  # the steps run in order; reading the last one waits for all
    seconds = time.perf_counter() - start
    # each batch's padded shape is what runs: source [B, S], target_in [B, target length + 1]
    flops = sum(
        len(source) * train_flops_per_sample(config.model, source.shape[1], target.shape[1] - 1)
        for source, target, _ in measured
    )
    traced = None
    if profile:  # after the timed steps, so the trace's own cost is not in their figures
        from benchmarks.op_profile import breakdown, trace

        profiled = batches[warmup + steps : warmup + steps + profile]
        start = time.perf_counter()
        xplane = trace(lambda: float([trainer.train_batch(*b) for b in profiled][-1]))
        traced = breakdown(xplane, time.perf_counter() - start, len(profiled))
    updates = time_update(trainer, update) if update else {}  # after the steps, as `traced`
    compute = keras.DTypePolicy(policy).compute_dtype  # of every product but the large ones
    dtype = products or compute
    floor = None if varied else matmul_floor(
        config.model, config.train.batch_size, source_len, target_len, dtype, compute
    )
    return {
        **settings,
        "compute_dtype": dtype,  # of the step's largest products (the output projection)
        "parameters": model.count_params(),
        "steps": len(measured),
        "warmup_s": first,
        "ms_per_step": 1000 * seconds / len(measured),
        "target_tokens_per_s": tokens / seconds,
        "flops_per_target_token": flops / tokens,
        "achieved_gflops": flops / seconds / 1e9,
        "matmul_floor_ms": floor and sum(entry["ms"] for entry in floor),
        "matmul_floor_products": floor,
        "peak_rss_mb": peak_rss_mb(),
        **({"profile": traced} if traced else {}),
        **updates,
    }


def results_path(
    task: str | None, varied: bool, only_default: bool, code: str | None,
    precision: str | None = None,
) -> Path:
    """The results file of a run: each mode its own, so a partial run (`--only-default`,
    another checkout's `--code`) never overwrites the full table of this checkout."""
    parts = ["train_throughput"]
    parts += [task] if task else []
    parts += ["varied"] if varied else []
    parts += ["default"] if only_default and not task else []
    parts += ["code"] if code else []
    parts += [precision] if precision else []
    return RESULTS_DIR / ("_".join(parts) + ".json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--source-len", type=int, default=40)
    parser.add_argument("--target-len", type=int, default=15)
    parser.add_argument("--code", help="measure the project checkout in this directory")
    parser.add_argument("--jit", action="store_true", help="train.jit_compile=true (XLA)")
    parser.add_argument("--only-default", action="store_true",
                        help="only the default configuration (lstm, input feeding, no copy)")
    parser.add_argument("--task", choices=["headline"],
                        help="one row with this task preset (s2s train --task), vocabulary "
                             f"{HEADLINE_VOCAB}; pair with --source-len 100 --target-len 25")
    parser.add_argument("--varied", action="store_true",
                        help="lengths drawn per example, bucketed: batches of many shapes")
    parser.add_argument("--floor-detail", action="store_true",
                        help="also print each row's matrix products: ms and GFLOP/s per shape")
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16"],
                        help="train.precision of every row (default: the config's, auto)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also trace N more steps with tf.profiler and print where their "
                             "time goes by kind of op (benchmarks.op_profile)")
    parser.add_argument("--update", type=int, default=0, metavar="N",
                        help="also time the optimizer update alone N times, as trained and "
                             "as a plain graph, against one thread's copy bandwidth")
    parser.add_argument("--out", type=Path,
                        help="results JSON (default: named after the mode, see results_path)")
    args = parser.parse_args()
    out = args.out or results_path(
        args.task, args.varied, args.only_default, args.code, args.precision
    )
    peaks = {dtype: [run_isolated(matmul_peak, 2048, 10, dtype)] for dtype in PEAK_DTYPES}
    configurations = CONFIGURATIONS[:1] if args.only_default else CONFIGURATIONS
    vocab = VOCAB
    if args.task:  # the preset's own model: an LSTM with input feeding and copying
        configurations = [{"cell": "lstm", "input_feeding": True, "copy": True}]
        vocab = HEADLINE_VOCAB
    rows = [
        run_isolated(measure, args.steps, args.warmup, args.source_len, args.target_len,
                     settings, args.code, args.jit, args.task, vocab, args.varied,
                     args.precision, args.profile, args.update)
        for settings in configurations
    ]
    for dtype in PEAK_DTYPES:
        peaks[dtype].append(run_isolated(matmul_peak, 2048, 10, dtype))
    # the larger of the two timings of each: the shares are then lower bounds
    peak = {dtype: max(timings) for dtype, timings in peaks.items()}
    for row in rows:
        row["peak_share"] = row["achieved_gflops"] / peak["float32"]
        row["dtype_peak_share"] = row["achieved_gflops"] / peak.get(
            row["compute_dtype"], float("nan")
        )
        if row["matmul_floor_ms"]:  # the share a step at its matrix products' time would reach
            row["floor_share"] = row["peak_share"] * row["ms_per_step"] / row["matmul_floor_ms"]
    for dtype, timings in peaks.items():
        print(f"matmul peak (2048^3 {dtype}): {timings[0]:.0f} GFLOP/s before, "
              f"{timings[1]:.0f} after")
    print(
        format_table(
            rows,
            [
                ("cell", "cell"),
                ("input_feeding", "input feeding"),
                ("copy", "copy"),
                ("compute_dtype", "computes in"),
                ("ms_per_step", "ms/step"),
                ("target_tokens_per_s", "target tokens/s"),
                ("flops_per_target_token", "FLOPs/token"),
                ("achieved_gflops", "GFLOP/s"),
                ("peak_share", "peak share"),
                ("dtype_peak_share", "share of its dtype's peak"),
                *([] if args.varied else [("matmul_floor_ms", "matmul floor ms"),
                                          ("floor_share", "floor peak share")]),
                ("peak_rss_mb", "peak RSS MB"),
                *([("update_ms", "update ms"), ("update_graph_ms", "update ms, plain graph"),
                   ("update_gb_per_s", "update GB/s"), ("copy_gb_per_s", "copy GB/s")]
                  if args.update else []),
            ],
        )
    )
    if args.floor_detail:
        for row in rows:
            print(f"\nmatmul floor of {row['cell']}, input feeding {row['input_feeding']}, "
                  f"copy {row['copy']} (product: count x [batch] [m,k] x [k,n])")
            print(format_table(row["matmul_floor_products"] or [], [
                ("product", "product"), ("dtype", "operands"), ("times", "times a step"),
                ("ms", "ms"),
                ("gflops", "GFLOP/s"),
            ]))
    profiled = [row for row in rows if "profile" in row]
    if profiled:
        from benchmarks.op_profile import print_profiles

        print_profiles(profiled, [("cell", "cell"), ("input_feeding", "input feeding"),
                                  ("copy", "copy")])
    write_json(
        out,
        {
            "config": (
                f"task preset {args.task}, vocab {vocab}" if args.task else
                "embedding 256, hidden 256, vocab 8000"
            ) + f", batch 64, source {args.source_len}, target {args.target_len}"
            + (" (varied: each length drawn from a quarter of it up to it)" if args.varied else ""),
            "code": args.code or "this checkout",
            "jit_compile": args.jit,
            "precision": args.precision or "the config's default",
            "matmul_peak_gflops": peaks["float32"],
            "matmul_peak_bfloat16_gflops": peaks["bfloat16"],
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
