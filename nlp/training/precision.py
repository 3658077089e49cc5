"""The dtypes training computes in: bfloat16 operands for the matrix products with the
model's kernels where the CPU multiplies bfloat16 natively, float32 for everything else.

`train.precision` decides, for the model a training run builds:

- `auto` (the default): `bfloat16` on a machine without GPUs whose CPU has bfloat16
  instructions (AVX512_BF16 or AMX-BF16), `float32` anywhere else. On a 2-core AVX512_BF16
  CPU, TensorFlow's oneDNN matmul runs bfloat16 at twice its float32 speed (2048^3: 394
  against 196 GFLOP/s). Without those instructions bfloat16 is emulated and slower than
  float32, hence the check. GPUs keep float32 under `auto`: no GPU was available to measure
  a gain on.
- `bfloat16`: these products take bfloat16 operands (accumulated in float32 by oneDNN,
  rounded to bfloat16, cast back): the output projection, the input projections, the
  attention keys' projection and their gradients (`recurrence.product`; without input
  feeding also the attentional layer, run once over all steps), inside the recurrences'
  loops each step's product with the recurrent (and input-feeding and attentional) kernels
  and its input gradient (`recurrence.loop_product`), and those kernels' gradients, one
  product over all steps after the loop (`recurrence.kernel_gradient`). The loops' state
  (h, c, the feed vector) and what they carry back, the gates, attention, the bridge and
  the other small products, the loss, the weights and the optimizer stay float32. Why not Keras'
  `mixed_bfloat16` policy (every activation in bfloat16): it made the default step 0.75x as
  long, but a chat model learned much more slowly in it: the recurrent state and its
  gradient carried through the loops in bfloat16 lose what small steps add. Rounding only
  the loops' product operands keeps that state in float32, so the validation losses stay
  those of float32 while the step's large products run at bfloat16 speed
  (`benchmarks/train_throughput.py` compares the two).
- `float32`: no bfloat16 anywhere. `float16`: Keras' `mixed_float16` (with loss scaling),
  for GPUs; without one it falls back to float32 with a warning.

Only training uses it: a saved bundle holds float32 weights, and decoding (the bot, the
headline script) builds its model in float32.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

PRECISIONS = ("auto", "float32", "bfloat16", "float16")  # train.precision


@dataclass(frozen=True)
class Precision:
    """What a `train.precision` setting means on this machine."""

    policy: str  # Keras dtype policy the model is built under
    products: str | None = None  # operand dtype of the large products (Seq2Seq(products=))


FLOAT32 = Precision("float32")
BFLOAT16_PRODUCTS = Precision("float32", "bfloat16")
FLOAT16 = Precision("mixed_float16")
# CPU flags (Linux /proc/cpuinfo names) of bfloat16 matrix instructions that oneDNN uses
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


def cpu_multiplies_bfloat16(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU has bfloat16 matrix instructions, read from Linux' /proc/cpuinfo.

    Why the flags rather than timing a product: the choice must be the same in every run on
    one machine (a seeded run is reproduced exactly), and a timing on a shared machine is
    not. Elsewhere (no /proc/cpuinfo: macOS, Windows) the answer is no, so `auto` keeps
    float32 there.
    """
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            flags.update(value.split())
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def precision_for(precision: str, *, gpus: int, native_bfloat16: bool) -> Precision:
    """What `train.precision` means on a machine with `gpus` GPUs and (or not) bfloat16 CPU
    instructions."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"train.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
        )
    if precision == "auto":
        return BFLOAT16_PRODUCTS if native_bfloat16 and not gpus else FLOAT32
    if precision == "float16" and not gpus:
        print("train.precision=float16 needs a GPU; training in float32", file=sys.stderr)
        return FLOAT32
    return {"float32": FLOAT32, "bfloat16": BFLOAT16_PRODUCTS, "float16": FLOAT16}[precision]


def resolve(precision: str) -> Precision:
    """`precision_for` this machine."""
    return precision_for(
        precision,
        gpus=len(tf.config.list_physical_devices("GPU")),
        native_bfloat16=cpu_multiplies_bfloat16(),
    )


@contextmanager
def policy_scope(policy: str) -> Iterator[None]:
    """Models built inside compute under the Keras dtype policy `policy` (`Precision.policy`);
    the previous global policy is back afterwards (Keras keeps it process-wide)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
