"""benchmarks/op_profile.py reads a real tf.profiler trace: the ops a known graph runs are
found with their counts and kinds, and time inside a function-call op is counted once."""

from __future__ import annotations

import time

import pytest

from benchmarks import op_profile


def test_a_traced_loop_is_broken_down_by_kind_with_its_op_counts() -> None:
    tf = pytest.importorskip("tensorflow")
    x = tf.random.normal([64, 128])
    w = tf.random.normal([128, 128])

    @tf.function
    def step(x: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
        def body(i: tf.Tensor, h: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return i + 1, tf.tanh(tf.matmul(h, w) + x)

        return tf.reduce_sum(tf.while_loop(lambda i, h: i < 7, body, (0, x))[1])

    step(x, w).numpy()  # traced and warm before the profile
    start = time.perf_counter()
    path = op_profile.trace(lambda: [step(x, w).numpy() for _ in range(3)])
    wall = time.perf_counter() - start
    profile = op_profile.breakdown(path, wall, steps=3)

    ops = profile["top_ops_ms"]
    assert {"MatMul", "Tanh", "AddV2", "Sum"} <= set(ops)
    kinds = profile["kinds_ms"]
    assert kinds["matmul"] > 0 and kinds["elementwise"] > 0 and kinds["reduce_softmax"] > 0
    # every op of the loop body ran 7 times a step: at least 7 products, 7 tanh, 14 adds
    assert profile["ops_per_step"] >= 7 + 7 + 14
    # ops run on at most the two inter-op threads: their time fits in twice the wall time
    assert 0 < profile["ops_ms"] <= 2 * profile["wall_ms"]


def test_nested_op_time_is_counted_once() -> None:
    # a call op spanning [0, 100) with a child [10, 40) and a sibling [100, 120)
    events = [(0, 100, "PartitionedCall"), (10, 30, "MatMul"), (100, 20, "Tanh")]
    assert sorted(op_profile._exclusive(events)) == [
        ("MatMul", 30), ("PartitionedCall", 70), ("Tanh", 20)
    ]


def test_onednn_kernels_count_as_the_ops_they_run() -> None:
    assert op_profile.op_type("_MklMatMul") == "MatMul"
    assert op_profile.op_type("_MklFusedMatMul") == "_FusedMatMul"
    assert op_profile.op_type("_MklNativeBatchMatMulV2") == "BatchMatMulV2"
    assert op_profile.op_type("Tanh") == "Tanh"
    assert {op_profile.KIND_OF[op_profile.op_type(name)]
            for name in ("_MklMatMul", "_MklNativeFusedMatMul")} == {"matmul"}
