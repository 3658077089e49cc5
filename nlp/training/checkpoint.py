"""Resumable training state: every variable of the model and the optimizer, plus counters.

Stored as one .npz of variables and a JSON of counters, written to a temporary directory and
renamed into place, so an interrupted write leaves the previous checkpoint intact. The model's
dropout seed state is a variable too, so a resumed run draws the same random numbers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from nlp.fsutil import atomic_directory, recover

STATE_FILE = "state.json"
VARIABLES_FILE = "variables.npz"


@dataclass
class TrainState:
    """Counters that say where training stands."""

    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # batches of the current epoch already trained
    global_step: int = 0
    best_valid_loss: float = float("inf")  # of the best epoch (by loss, or by the selection)
    best_score: float = float("-inf")  # of the best epoch, when a selection score picks it
    best_epoch: int = -1
    bad_epochs: int = 0
    finished: bool = False
    train_seconds: float = 0.0  # time spent in training steps, across resumed runs
    history: list[dict[str, Any]] = field(default_factory=list)


def _variables(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> list[Any]:
    return [*model.variables, *optimizer.variables]


def save_checkpoint(
    directory: Path, model: keras.Model, optimizer: keras.optimizers.Optimizer, state: TrainState
) -> None:
    arrays = {f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(_variables(model, optimizer))}
    with atomic_directory(directory) as tmp:
        np.savez(tmp / VARIABLES_FILE, **arrays)
        (tmp / STATE_FILE).write_text(json.dumps(asdict(state), indent=1), "utf-8")


def load_checkpoint(
    directory: Path, model: keras.Model, optimizer: keras.optimizers.Optimizer
) -> TrainState:
    """Restore variables in place; the optimizer must already be built for the model."""
    directory = recover(directory)
    if not directory.exists():
        raise FileNotFoundError(f"{directory}: no checkpoint to resume from")
    try:
        state = TrainState(**json.loads((directory / STATE_FILE).read_text("utf-8")))
        with np.load(directory / VARIABLES_FILE) as arrays:
            values = [arrays[f"v{i}"] for i in range(len(arrays.files))]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{directory}: unreadable checkpoint: {exc}") from exc
    variables = _variables(model, optimizer)
    if len(values) != len(variables):
        raise ValueError(
            f"{directory / VARIABLES_FILE}: holds {len(values)} variables, the model and "
            f"optimizer have {len(variables)}: was it written with another config?"
        )
    for variable, value in zip(variables, values, strict=True):
        if tuple(variable.shape) != value.shape:
            raise ValueError(
                f"{directory / VARIABLES_FILE}: {variable.path} has shape {value.shape}, "
                f"expected {tuple(variable.shape)}"
            )
        variable.assign(value)
    return state
