"""The dtypes training computes in: bfloat16 operands for the matrix products with the
model's kernels where the CPU multiplies bfloat16 natively, float32 for everything else.

`train.precision` decides, for the model a training run builds:

- `auto` (the default): on a machine without GPUs whose CPU has bfloat16 instructions
  (AVX512_BF16 or AMX-BF16), whichever of `bfloat16` and `float32` multiplies faster here,
  by a short race of the model's own large products (`race_products`), cached per machine
  (`PrecisionCache`); `float32` anywhere else. Why a race rather than the flags: machines
  listing the same instructions differ, and on some TensorFlow's bfloat16 matmul runs at
  twice float32's speed, on others at half (the flags alone chose the slower one there).
  Without those instructions bfloat16 is emulated and always slower, so no race is run.
  GPUs keep float32 under `auto`: no GPU was available to measure a gain on.
- `bfloat16`: these products take bfloat16 operands (accumulated in float32 by oneDNN,
  rounded to bfloat16, cast back): the output projection, the input projections, the
  attention keys' projection and their gradients (`recurrence.product`; without input
  feeding also the attentional layer, run once over all steps), inside the recurrences'
  loops each step's product with the recurrent (and input-feeding and attentional) kernels
  and its input gradient (`recurrence.loop_product`), and those kernels' gradients, one
  product over all steps after the loop (`recurrence.kernel_gradient`); a Transformer's
  (`model.architecture=transformer`) products with its layers' kernels (`transformer.Block`).
  The loops' state (h, c, the feed vector) and what they carry back, the gates, attention,
  the bridge and the other small products, the loss, the weights and the optimizer stay
  float32. Why not Keras' `mixed_bfloat16` policy (every activation in bfloat16): it made
  the default step 0.75x as long, but a chat model learned much more slowly in it: the
  recurrent state and its gradient carried through the loops in bfloat16 lose what small
  steps add. Rounding only the loops' product operands keeps that state in float32, so the
  validation losses stay those of float32 while the step's large products run at bfloat16
  speed (`benchmarks/train_throughput.py` compares the two).
- `float32`: no bfloat16 anywhere. `float16`: Keras' `mixed_float16` (with loss scaling),
  for GPUs; without one it falls back to float32 with a warning.

Only training uses it: a saved bundle holds float32 weights, and decoding (the bot, the
headline script) builds its model in float32.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import tensorflow as tf

from nlp.training.workers import per_worker
from nlp.util.config import ExperimentConfig
from nlp.util.fsutil import write_text_atomic


@dataclass(frozen=True)
class Precision:
    """What a `train.precision` setting means on this machine."""

    policy: str  # Keras dtype policy the model is built under
    products: str | None = None  # operand dtype of the large products (Seq2Seq(products=))


FLOAT32 = Precision("float32")
BFLOAT16_PRODUCTS = Precision("float32", "bfloat16")
FLOAT16 = Precision("mixed_float16")
# What each dtype `train.precision` can name means (`precision_for`); "auto" chooses among them
NAMED = {"float32": FLOAT32, "bfloat16": BFLOAT16_PRODUCTS, "float16": FLOAT16}
PRECISIONS = ("auto", *NAMED)  # train.precision
# CPU flags (Linux /proc/cpuinfo names) of bfloat16 matrix instructions that oneDNN uses
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


def cpu_multiplies_bfloat16(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU has bfloat16 matrix instructions, read from Linux' /proc/cpuinfo.

    Why the flags first: without them bfloat16 is emulated and never the faster, so `auto`
    races the two dtypes only on a CPU that lists them (`precision_for`), and keeps the race's
    winner per machine (`PrecisionCache`) so every run there computes alike. Elsewhere (no
    /proc/cpuinfo: macOS, Windows) the answer is no, so `auto` keeps float32 there.
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


@dataclass(frozen=True)
class ProductSizes:
    """The model's largest products, which decide what a training step costs: the output
    projection (every target token of a batch x units -> vocabulary) and a recurrent step's
    gates (batch x (units + embedding) -> 4 units)."""

    tokens: int  # target tokens in a batch: batch size x longest target
    batch: int
    units: int
    embedding: int
    vocab: int

    @classmethod
    def of(cls, config: ExperimentConfig) -> ProductSizes:
        """A training config's products, at its largest vocabulary (`vocab.max_size`). Why
        not the counted vocabulary: a run counts it from the corpus after the race, and its
        saved config holds the count, so a resumed run's sizes, and the cache key they make,
        would differ from the fresh run's."""
        return cls(
            tokens=config.train.batch_size * config.train.max_target_length,
            batch=config.train.batch_size,
            units=config.model.units,
            embedding=config.model.embedding_dim,
            vocab=config.vocab.max_size,
        )

    @property
    def flops(self) -> float:
        """Multiply-adds x 2 of one pass of both products."""
        gates = self.batch * (self.units + self.embedding) * 4 * self.units
        return 2.0 * (self.tokens * self.units * self.vocab + gates)


def race_products(sizes: ProductSizes, seconds: float = 1.0) -> dict[str, float]:
    """GFLOP/s of the model's products in float32 and with bfloat16 operands (cast from
    float32 and back, as `nlp.model.recurrence.product` does), measured in turns so that
    another job slowing the machine slows both; the median of each's rounds."""
    a = tf.random.uniform([sizes.tokens, sizes.units])
    w = tf.random.uniform([sizes.units, sizes.vocab])
    x = tf.random.uniform([sizes.batch, sizes.units + sizes.embedding])
    k = tf.random.uniform([sizes.units + sizes.embedding, 4 * sizes.units])

    def as_is(p: tf.Tensor, q: tf.Tensor) -> tf.Tensor:
        return tf.matmul(p, q)

    def rounded(p: tf.Tensor, q: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.matmul(tf.cast(p, tf.bfloat16), tf.cast(q, tf.bfloat16)), tf.float32)

    runs = {}
    for name, multiply in (("float32", as_is), ("bfloat16", rounded)):
        def both(multiply: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] = multiply) -> tf.Tensor:
            return tf.reduce_sum(multiply(a, w)[:1]) + tf.reduce_sum(multiply(x, k)[:1])
        runs[name] = tf.function(both)
        runs[name]().numpy()  # trace and warm up
    times: dict[str, list[float]] = {name: [] for name in runs}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or min(len(t) for t in times.values()) < 3:
        for name, run in runs.items():
            start = time.perf_counter()
            run().numpy()
            times[name].append(time.perf_counter() - start)
    return {name: sizes.flops / statistics.median(t) / 1e9 for name, t in times.items()}


def machine_key() -> str:
    """What identifies this machine's arithmetic: processor, its flags, cores, TensorFlow."""
    try:
        cpuinfo = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        cpuinfo = ""
    described = {
        line.partition(":")[0].strip(): line.partition(":")[2].strip()
        for line in cpuinfo.splitlines()
        if line.partition(":")[0].strip() in ("model name", "flags")
    }
    text = json.dumps([platform.machine(), platform.processor(), described, os.cpu_count(),
                       tf.__version__], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_path() -> Path:
    """`$S2S_CACHE_DIR/precision.json`, else `$XDG_CACHE_HOME/s2s/` (`~/.cache/s2s/`)."""
    if os.environ.get("S2S_CACHE_DIR"):
        return Path(os.environ["S2S_CACHE_DIR"]) / "precision.json"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "s2s" / "precision.json"


@dataclass(frozen=True)
class Race:
    """One race's result: GFLOP/s of each operand dtype, and the winner."""

    float32: float
    bfloat16: float

    @property
    def faster(self) -> str:
        return "bfloat16" if self.bfloat16 > self.float32 else "float32"


class PrecisionCache:
    """Races kept per machine and model sizes in one JSON file, so every run on a machine
    makes the same choice (a seeded run is then reproduced exactly, and `--resume` computes
    as the run it continues) and only the first pays the race's seconds. Delete the file to
    race again (after a TensorFlow upgrade the machine key changes by itself)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_cache_path()

    def _entries(self) -> dict[str, dict[str, float]]:
        try:
            entries = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def race(
        self, sizes: ProductSizes, run: Callable[[ProductSizes], dict[str, float]] = race_products
    ) -> Race:
        shape = (sizes.tokens, sizes.batch, sizes.units, sizes.embedding, sizes.vocab)
        key = f"{machine_key()}:{'x'.join(map(str, shape))}"
        entries = self._entries()
        if key in entries:
            return Race(**entries[key])
        measured = run(sizes)
        result = Race(float32=measured["float32"], bfloat16=measured["bfloat16"])
        entries[key] = asdict(result)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, json.dumps(entries, indent=1) + "\n")
        except OSError as error:  # a read-only home: race again next time, say so once
            print(f"could not cache the precision race in {self.path}: {error}", file=sys.stderr)
        return result


def the_chiefs(precision: Precision, strategy: tf.distribute.Strategy | None,
               chief: bool) -> Precision:
    """Under a multi-worker strategy, the chief's `precision` on every worker; under any other
    (or none), `precision` as it is. Why: each worker resolves `auto` on its own machine (its
    own race, cache and CPU flags), and a near tie can split them; workers whose products
    round to different dtypes compute the same step differently, so their replicas drift
    apart. Every worker calls this once, whichever way it chose: each of the chief's replicas
    votes for its choice, the others' for none (`per_worker`), and the most votes win."""
    choices = list(NAMED.values())
    votes = per_worker(strategy, [float(chief and c == precision) for c in choices], tf.float32)
    return precision if votes is None else choices[int(votes.sum(axis=0).argmax())]


def precision_for(
    precision: str,
    *,
    gpus: int,
    native_bfloat16: bool,
    race: Callable[[], Race] | None = None,
) -> Precision:
    """What `train.precision` means on a machine with `gpus` GPUs and (or not) bfloat16 CPU
    instructions; `race` (called only when `auto` must choose) says which multiplies faster."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"train.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
        )
    if precision == "auto":
        if gpus or not native_bfloat16 or race is None:
            return FLOAT32
        return BFLOAT16_PRODUCTS if race().faster == "bfloat16" else FLOAT32
    if precision == "float16" and not gpus:
        print("train.precision=float16 needs a GPU; training in float32", file=sys.stderr)
        return FLOAT32
    return NAMED[precision]


def resolve(
    precision: str, sizes: ProductSizes, cache: PrecisionCache | None = None
) -> tuple[Precision, Race | None]:
    """`precision_for` this machine, and the race that decided `auto` (None: no race)."""
    raced: list[Race] = []

    def race() -> Race:
        raced.append((cache or PrecisionCache()).race(sizes))
        return raced[-1]

    chosen = precision_for(
        precision,
        gpus=len(tf.config.list_physical_devices("GPU")),
        native_bfloat16=cpu_multiplies_bfloat16(),
        race=race,
    )
    return chosen, (raced[0] if raced else None)


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
