"""The dtype training computes in: bfloat16 where the CPU multiplies it natively, else float32.

`train.precision` picks a Keras dtype policy for the model a training run builds. The
weights, the optimizer and the loss stay float32 in every policy (Keras' "mixed" policies);
what changes is the dtype of the activations and of the matrix products:

- `auto` (the default): `mixed_bfloat16` on a machine without GPUs whose CPU has bfloat16
  instructions (AVX512_BF16 or AMX-BF16), `float32` anywhere else. On a 2-core AVX512_BF16
  CPU, TensorFlow's oneDNN matmul runs bfloat16 at twice its float32 speed (2048^3: 394
  against 196 GFLOP/s), the default training step took 0.75x the time, and the chat and
  headline recipes reached lower validation losses sooner (README, "Training speed").
  Without those instructions bfloat16 is emulated and slower than float32, hence the check.
  GPUs keep float32 under `auto`: no GPU was available to measure a gain on.
- `float32`, `bfloat16`, `float16`: that compute dtype whatever the machine. `float16` needs
  a GPU (it gets loss scaling); without one it falls back to float32 with a warning.

bfloat16 keeps float32's exponent range, so it needs no loss scaling; its 8-bit mantissa is
applied to activations only, while the updates accumulate in float32 weights.

Only training uses it: a saved bundle holds float32 weights, and decoding (the bot, the
headline script) builds its model in float32. The policy is Keras' process-wide default, so
`policy_scope` sets it only while a model is built and restores the previous one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import tensorflow as tf

PRECISIONS = ("auto", "float32", "bfloat16", "float16")  # train.precision
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
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


def policy_name(precision: str, *, gpus: int, native_bfloat16: bool) -> str:
    """The Keras dtype policy that `train.precision` means on a machine with `gpus` GPUs and
    (or not) bfloat16 CPU instructions."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"train.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
        )
    if precision == "auto":
        return POLICIES["bfloat16" if native_bfloat16 and not gpus else "float32"]
    if precision == "float16" and not gpus:
        print("train.precision=float16 needs a GPU; training in float32", file=sys.stderr)
        return POLICIES["float32"]
    return POLICIES[precision]


def resolve(precision: str) -> str:
    """`policy_name` for this machine."""
    return policy_name(
        precision,
        gpus=len(tf.config.list_physical_devices("GPU")),
        native_bfloat16=cpu_multiplies_bfloat16(),
    )


@contextmanager
def policy_scope(policy: str) -> Iterator[None]:
    """Models built inside compute under the Keras dtype policy `policy` (from `resolve`);
    the previous global policy is back afterwards."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
