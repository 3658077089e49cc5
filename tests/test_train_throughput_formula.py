"""The training-throughput benchmark counts the model's FLOPs twice, as a formula
(`train_flops_per_sample`, which gives `peak_share`) and as the list of the step's matrix
products (`training_matmuls`, which gives the matmul floor): the two must agree, or the
floor's share and the achieved share would not be comparable."""

from __future__ import annotations

import pytest

from benchmarks.train_throughput import (
    RESULTS_DIR,
    product_flops,
    results_path,
    train_flops_per_sample,
    training_matmuls,
)
from nlp.config import ModelConfig

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


def test_the_projections_and_only_they_take_the_large_operands() -> None:
    """The floor times the input and output projections in `train.precision`'s operand
    dtype (bfloat16 under `auto` on CPUs with it) and every other product in float32, as
    the model runs them (`recurrence.product`)."""
    model = ModelConfig(embedding_dim=24, units=16, vocab_size=50)
    E, U, V, G, steps = 24, 16, 50, 4, TARGET + 1
    products = training_matmuls(model, BATCH, SOURCE, TARGET, "bfloat16")
    assert {dtype for _, dtype in products} == {"bfloat16", "float32"}
    large = sum(product_flops(p) for p, dtype in products if dtype == "bfloat16")
    encoder_inputs = 2 * 2 * BATCH * SOURCE * E * G * (U // 2)  # two directions
    decoder_inputs = 2 * BATCH * steps * E * G * U
    output = 2 * BATCH * steps * U * V
    assert large == 3 * (encoder_inputs + decoder_inputs + output)  # forward + 2 gradients
    assert {dtype for _, dtype in training_matmuls(model, BATCH, SOURCE, TARGET)} == {"float32"}
