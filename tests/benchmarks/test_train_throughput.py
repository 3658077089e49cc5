"""The training-throughput benchmark counts the model's FLOPs twice, as a formula
(`train_flops_per_sample`, which gives `peak_share`) and as the list of the step's matrix
products (`training_matmuls`, which gives the matmul floor): the two must agree, or the
floor's share and the achieved share would not be comparable."""

from __future__ import annotations

import pytest

from benchmarks.train_throughput import (
    RESULTS_DIR,
    matmul_floor,
    product_flops,
    results_path,
    train_flops_per_sample,
    training_matmuls,
)
from nlp.util.config import ModelConfig

BATCH, SOURCE, TARGET = 8, 11, 6


def _product_flops(model: ModelConfig) -> int:
    return sum(product_flops(p) for p, _ in training_matmuls(model, BATCH, SOURCE, TARGET))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("input_feeding", [True, False])
@pytest.mark.parametrize("attention", ["dot", "general"])
def test_formula_equals_the_sum_of_the_step_products(
    cell: str, input_feeding: bool, attention: str
) -> None:
    model = ModelConfig(
        cell=cell, input_feeding=input_feeding, attention=attention,
        embedding_dim=24, units=16, vocab_size=50,
    )
    assert _product_flops(model) == BATCH * train_flops_per_sample(model, SOURCE, TARGET)


def test_copy_adds_only_the_gate_products_the_list_leaves_out() -> None:
    plain = ModelConfig(embedding_dim=24, units=16, vocab_size=50)
    copying = ModelConfig(embedding_dim=24, units=16, vocab_size=50, copy=True)
    gate = 3 * (TARGET + 1) * 2 * (2 * 16 + 24)  # forward + backward, per sample
    extra = train_flops_per_sample(copying, SOURCE, TARGET)
    assert extra - train_flops_per_sample(plain, SOURCE, TARGET) == gate
    assert _product_flops(copying) == _product_flops(plain)


def test_each_mode_writes_its_own_results_file() -> None:
    paths = [
        results_path(None, False, False, None),
        results_path(None, False, True, None),
        results_path(None, True, False, None),
        results_path("headline", False, False, None),
        results_path(None, False, False, "/some/worktree"),
    ]
    assert paths[0] == RESULTS_DIR / "train_throughput.json"
    assert len(set(paths)) == len(paths)


def test_the_projections_and_the_loops_products_take_the_large_operands() -> None:
    """The floor times the input and output projections and the keys
    (`recurrence.product`), the loops' per-step products with their kernels and those
    products' input gradients (`recurrence.loop_product`) and the kernels' gradients after
    the loops (`recurrence.kernel_gradient`) in `train.precision`'s operand dtype (bfloat16
    under `auto` on CPUs with it), and every other product (attention, the bridge) in
    float32, as the model runs them."""
    model = ModelConfig(embedding_dim=24, units=16, vocab_size=50)
    E, U, V, G, steps = 24, 16, 50, 4, TARGET + 1
    u = U // 2
    products = training_matmuls(model, BATCH, SOURCE, TARGET, "bfloat16")
    assert {dtype for _, dtype in products} == {"bfloat16", "float32"}
    large = sum(product_flops(p) for p, dtype in products if dtype == "bfloat16")
    encoder_inputs = 2 * 2 * BATCH * SOURCE * E * G * u  # two directions
    decoder_inputs = 2 * BATCH * steps * E * G * U
    output = 2 * BATCH * steps * U * V
    keys = 2 * BATCH * SOURCE * U * U
    projections = 3 * (encoder_inputs + decoder_inputs + output + keys)  # forward + 2 gradients
    encoder_loops = 2 * 2 * BATCH * SOURCE * u * G * u  # two directions
    decoder_loop = 2 * BATCH * steps * 2 * U * (G * U + U)  # [feed; h] and the attentional layer
    # forward, the input gradient in the loop and the kernel gradient after it
    loops = 3 * (encoder_loops + decoder_loop)
    assert large == projections + loops
    assert {dtype for _, dtype in training_matmuls(model, BATCH, SOURCE, TARGET)} == {"float32"}


@pytest.mark.parametrize("input_feeding", [True, False])
def test_the_floor_times_every_product_in_its_dtype(input_feeding: bool) -> None:
    """`matmul_floor` runs each listed product in the dtype listed for it, bfloat16 per-step
    products inside a loop included (it once added a float32 running total to a bfloat16
    product and failed), and accounts for all of them."""
    model = ModelConfig(embedding_dim=24, units=16, vocab_size=50, input_feeding=input_feeding)
    entries = matmul_floor(model, 4, 5, 3, "bfloat16")
    listed = training_matmuls(model, 4, 5, 3, "bfloat16")
    assert sum(entry["times"] for entry in entries) == len(listed)
    assert {(tuple(e["product"]), e["dtype"]) for e in entries} == {
        (product, dtype) for product, dtype in listed
    }
    assert all(entry["ms"] > 0 for entry in entries)


@pytest.mark.slow
def test_a_profiled_row_breaks_the_real_training_step_down() -> None:
    from benchmarks.train_throughput import measure

    row = measure(2, 1, 6, 4, {"cell": "lstm"}, None, False, vocab=60, varied=True,
                  profile=2, update=2)
    profile = row["profile"]
    assert profile["steps"] == 2 and profile["wall_ms"] > 0
    # the trainer's step multiplies matrices, runs element-wise gates and a softmax loss
    assert {"matmul", "elementwise", "reduce_softmax"} <= set(profile["kinds_ms"])
    assert profile["ops_per_step"] > 50
    # the update alone, both ways, and the bytes it must move over its time
    assert row["update_ms"] > 0 and row["update_graph_ms"] > 0 and row["copy_gb_per_s"] > 0
    moved = row["parameters"] * 28 / 1e6  # MB: weight, gradient, two moments read; three written
    assert row["update_gb_per_s"] == pytest.approx(moved / row["update_ms"])
