"""Where a TensorFlow step's time goes on the CPU: a profiler trace broken down by kind of op.

A step's share of the matmul peak says how much of the machine it uses, not what the rest
is spent on. This module runs a callable under `tf.profiler` (the trace TensorBoard's
profile plugin shows) and reads the trace's own protobuf (`XSpace`, shipped with TensorFlow)
rather than a viewer, so a benchmark can print the breakdown beside its timings:

- **ops by kind**: every executed kernel is an event named `node:OpType` on one of the
  executor's threads (`tf_Compute/...`); their durations are summed per op type and per
  kind (`KINDS`: matrix products, element-wise, reductions and softmax, data movement, loop
  control, the optimizer's update, XLA clusters, other).
- **executor overhead**: the executor's `ExecutorState::Process` events span the ops they
  run; their time not inside an op is the graph executor's own bookkeeping per op.
- **thread time, not wall time**: ops of the two inter-op threads overlap (the encoder's
  two directions run at once), and a matrix product also keeps the intra-op threads busy,
  so the kinds add up to more than the step's wall time; their shares (`kinds_share`) say
  where the threads' time goes.
- **busy and wall**: the traced calls' wall time, and the threads' summed busy time (ops
  plus overhead): with two inter-op threads a step can be busy for up to twice its wall
  time, so `busy / wall` says how much of the two cores' inter-op parallelism is used.

Kernels parallelise inside themselves on the intra-op pool (`tf_numa_..._Eigen`); that work
is counted in the op's own duration (the op waits for it), so the kinds are wall time on
the executor threads, the time a faster kernel or fewer ops would save.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Op types by kind; an op type not listed is "other" (the table lists the largest of them).
KINDS: dict[str, tuple[str, ...]] = {
    "matmul": ("MatMul", "_FusedMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum",
               "SparseMatMul"),
    "elementwise": (
        "AddV2", "Add", "AddN", "Sub", "Mul", "RealDiv", "DivNoNan", "Neg", "Square",
        "SquaredDifference", "Sqrt", "Rsqrt", "Exp", "Log", "Log1p", "Tanh", "Sigmoid",
        "TanhGrad", "SigmoidGrad", "Relu", "ReluGrad", "Maximum", "Minimum", "Select",
        "SelectV2", "Cast", "Equal", "NotEqual", "Less", "LessEqual", "Greater",
        "GreaterEqual", "LogicalAnd", "LogicalOr", "LogicalNot", "OnesLike", "ZerosLike",
        "Reciprocal", "ReciprocalGrad", "Softplus", "Pow", "FloorMod", "FloorDiv", "Sign",
        "Abs", "IsFinite", "BiasAdd", "BiasAddGrad", "ClipByValue",
    ),
    "reduce_softmax": (
        "Sum", "Mean", "Max", "Min", "Prod", "All", "Any", "ArgMax", "Softmax", "LogSoftmax",
        "SparseSoftmaxCrossEntropyWithLogits", "SoftmaxCrossEntropyWithLogits", "L2Loss",
        "Cumsum", "TopKV2",
    ),
    "data_movement": (
        "GatherV2", "ResourceGather", "GatherNd", "ScatterNd", "TensorScatterUpdate",
        "TensorScatterAdd", "UnsortedSegmentSum", "ConcatV2", "Concat", "Split", "SplitV",
        "Slice", "StridedSlice", "StridedSliceGrad", "Transpose", "Pad", "PadV2", "Reshape",
        "Tile", "Pack", "Unpack", "Fill", "BroadcastTo", "ExpandDims", "Squeeze", "OneHot",
        "Reverse", "ReverseV2", "ReverseSequence", "TensorListFromTensor",
        "TensorListStack", "TensorListSetItem", "TensorListGetItem", "TensorListReserve",
        "TensorListElementShape", "TensorListLength", "TensorListPushBack",
        "TensorListPopBack", "ReadVariableOp", "AssignVariableOp", "AssignAddVariableOp",
        "Identity", "IdentityN", "Const", "Shape", "ShapeN", "Size", "Range",
        "_Recv", "_Send", "_HostRecv", "_HostSend", "Snapshot",
    ),
    "loop_control": (
        "Enter", "Exit", "Merge", "Switch", "NextIteration", "LoopCond", "StatelessWhile",
        "While", "StatelessIf", "If", "PartitionedCall", "StatefulPartitionedCall", "NoOp",
        "_Retval", "_Arg",
    ),
    "optimizer": ("ResourceApplyAdam", "ResourceApplyAdamWithAmsgrad",
                  "ResourceSparseApplyAdam", "ResourceApplyGradientDescent"),
    "xla_cluster": ("_XlaCompile", "_XlaRun", "XlaLaunch", "_XlaMerge",
                    "CpuExecutable::ExecuteAsyncOnStream"),
}
KIND_OF: dict[str, str] = {op: kind for kind, ops in KINDS.items() for op in ops}
PROCESS = "ExecutorState::Process"  # the executor's span around the ops it runs
# An XLA cluster (the optimizer's update under `train.jit_optimizer`) runs as one executable
# whose events carry C++ scope names rather than node:OpType
XLA_EXECUTION = "CpuExecutable::ExecuteAsyncOnStream"
EXECUTOR_THREADS = "tf_Compute"  # thread-name prefix of the inter-op pool
# With oneDNN on (`nlp/__init__.py`), TensorFlow rewrites ops to its kernels under these
# prefixes (`_MklMatMul`, `_MklFusedMatMul`, `_MklNativeBatchMatMulV2`): the same op, counted
# under its own type so the kinds and the op table mean the same with or without oneDNN
ONEDNN_PREFIXES = ("_MklNative", "_Mkl")


def op_type(name: str) -> str:
    """The op type a kernel runs, without a oneDNN rewrite's prefix."""
    for prefix in ONEDNN_PREFIXES:
        if name.startswith(prefix):
            base = name[len(prefix):]
            return f"_{base}" if base.startswith("Fused") else base
    return name


def trace(function: Callable[[], Any], logdir: Path | None = None) -> Path:
    """Run `function` under `tf.profiler` and return the trace's `.xplane.pb` file."""
    import tensorflow as tf

    directory = Path(logdir or tempfile.mkdtemp(prefix="op_profile_"))
    tf.profiler.experimental.start(str(directory))
    try:
        function()
    finally:
        tf.profiler.experimental.stop()
    found = sorted(directory.glob("**/*.xplane.pb"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise RuntimeError(f"tf.profiler wrote no .xplane.pb under {directory}")
    return found[-1]


def breakdown(xplane: Path, wall_seconds: float, steps: int) -> dict[str, Any]:
    """Milliseconds per step by kind of op, executor overhead, busy time and op counts,
    from one trace of `steps` steps that took `wall_seconds`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(xplane.read_bytes())
    by_op: dict[str, float] = defaultdict(float)
    count_by_op: dict[str, int] = defaultdict(int)
    process_ps = 0
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            if not line.name.startswith(EXECUTOR_THREADS):
                continue
            ops = []
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name == PROCESS:
                    process_ps += event.duration_ps
                elif name.startswith(XLA_EXECUTION):  # a compiled cluster's run
                    ops.append((event.offset_ps, event.duration_ps, XLA_EXECUTION))
                elif ":" in name and "::" not in name:  # node:OpType (not runtime scopes)
                    kernel = op_type(name.rsplit(":", 1)[1])
                    ops.append((event.offset_ps, event.duration_ps, kernel))
            for op, exclusive in _exclusive(ops):
                by_op[op] += exclusive
                count_by_op[op] += 1
    per_step_ms = 1e-9 / max(steps, 1)  # picoseconds in all -> milliseconds per step
    ops_ps = sum(by_op.values())
    kinds: dict[str, float] = defaultdict(float)
    for op, ps in by_op.items():
        kinds[KIND_OF.get(op, "other")] += ps * per_step_ms
    top_other = sorted((op for op in by_op if op not in KIND_OF), key=lambda op: -by_op[op])
    return {
        "steps": steps,
        "wall_ms": 1000 * wall_seconds / max(steps, 1),
        "ops_ms": ops_ps * per_step_ms,
        "executor_overhead_ms": max(0, process_ps - ops_ps) * per_step_ms,
        "kinds_ms": dict(sorted(kinds.items(), key=lambda item: -item[1])),
        "kinds_share": {kind: ms / (ops_ps * per_step_ms) for kind, ms in kinds.items()}
        if ops_ps else {},
        "ops_per_step": sum(count_by_op.values()) / max(steps, 1),
        "top_ops_ms": {
            op: by_op[op] * per_step_ms for op in sorted(by_op, key=lambda o: -by_op[o])[:12]
        },
        "top_other_ms": {op: by_op[op] * per_step_ms for op in top_other[:6]},
    }


def _exclusive(events: list[tuple[int, int, str]]) -> list[tuple[str, int]]:
    """(op type, picoseconds not inside another op of the same thread) of each (start,
    duration, op type): a function-call op (PartitionedCall, While) spans the ops it runs,
    which would otherwise be counted twice."""
    result: list[list[Any]] = []
    open_ops: list[tuple[int, int]] = []  # (end, index into result) of enclosing ops
    for start, duration, op in sorted(events, key=lambda e: (e[0], -e[1])):
        while open_ops and open_ops[-1][0] <= start:
            open_ops.pop()
        if open_ops:
            result[open_ops[-1][1]][1] -= duration
        result.append([op, duration])
        open_ops.append((start + duration, len(result) - 1))
    return [(op, max(0, ps)) for op, ps in result]


def kind_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Table columns for the kinds present in `rows`' profiles (largest first)."""
    totals: dict[str, float] = defaultdict(float)
    for row in rows:
        for kind, ms in row["profile"]["kinds_ms"].items():
            totals[kind] += ms
    return [(f"profile_{kind}", f"{kind} ms") for kind in sorted(totals, key=lambda k: -totals[k])]


def flatten(profile: dict[str, Any]) -> dict[str, float]:
    """A profile's per-step figures as flat `profile_*` columns for `format_table`."""
    flat = {f"profile_{kind}": ms for kind, ms in profile["kinds_ms"].items()}
    flat["profile_wall"] = profile["wall_ms"]
    flat["profile_ops"] = profile["ops_ms"]
    flat["profile_overhead"] = profile["executor_overhead_ms"]
    flat["profile_ops_per_step"] = profile["ops_per_step"]
    flat["profile_matmul_share"] = profile["kinds_share"].get("matmul", 0.0)
    return flat


def print_profiles(rows: list[dict[str, Any]], labels: list[tuple[str, str]]) -> None:
    """Each profiled row's traced steps, its `labels` columns (key, heading) first: ms per
    step by kind of op (exclusive time on the executor threads), the executor's own
    overhead, and the largest op types."""
    from benchmarks.common import format_table

    print("\nwhere the traced steps' time goes (ms per step; ops on two threads can "
          "sum to more than the wall time)")
    table = [{**row, **flatten(row["profile"])} for row in rows]
    print(format_table(table, [
        *labels,
        ("profile_wall", "wall ms"), ("profile_ops", "ops ms"),
        ("profile_overhead", "executor overhead ms"), *kind_columns(rows),
        ("profile_matmul_share", "matmul share of ops"),
        ("profile_ops_per_step", "ops/step"),
    ]))
    for row in rows:
        top = ", ".join(f"{op} {ms:.1f}" for op, ms in row["profile"]["top_ops_ms"].items())
        named = ", ".join(f"{heading} {row[key]}" for key, heading in labels)
        print(f"largest op types, {named} (ms/step): {top}")
