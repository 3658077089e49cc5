"""Resumable training state: every variable of the model and the optimizer, plus counters.

Stored with `tf.train.Checkpoint` / `tf.train.CheckpointManager`: each save is a new numbered
checkpoint, and the manager's index file (rewritten atomically) names the latest complete
one, so a process killed while saving leaves the previous checkpoint in use; old ones are
rotated away. The counters (`TrainState`) are saved inside the same checkpoint, so they can
never disagree with the weights.

Every variable is keyed by its *object path*: the chain of attribute names that leads to it
from the model (`encoder_rnns/0/forward_layer/cell/kernel`), and optimizer slots by the path
of the weight they belong to (`optimizer/slots/bridge/_kernel/momentum`). Neither the order in
which layers are created nor Keras's auto-generated layer names (`lstm_1`, which depend on
what else the process built) can send a value to the wrong variable. Plain
`tf.train.Checkpoint(model=...)` is not enough with Keras 3: weights of layers held in lists,
the dropout seed state and the optimizer slots would be missing or matched by position.
"""

from __future__ import annotations

import heapq
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

CHECKPOINT_NAME = "ckpt"
KEEP = 3  # checkpoints kept on disk; older ones are deleted
_STATE_KEY = "state/.ATTRIBUTES/py_state"
_SLOTS = "optimizer/slots/"  # key prefix of the optimizer's per-weight slots


class _QuietSaves(logging.Filter):
    """Drops the INFO line TensorFlow logs through absl on every checkpoint save."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Sharding callback duration")


logging.getLogger("absl").addFilter(_QuietSaves())


@dataclass
class TrainState:
    """Counters that say where training stands."""

    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # batches of the current epoch already trained
    global_step: int = 0
    # The bundle's model: the best complete epoch, or the weights a time budget stopped inside
    # an epoch when they validated better (then best_epoch has a fraction, e.g. 2.37).
    best_valid_loss: float = float("inf")  # by loss, or by the selection
    best_score: float = float("-inf")  # when a selection score picks it
    best_epoch: float = -1
    # The best complete epoch's, which early stopping compares with: a part-epoch the budget
    # kept must not change what a resumed run does from an uninterrupted one.
    epochs_best_valid_loss: float = float("inf")
    epochs_best_score: float = float("-inf")
    lowest_valid_loss: float = float("inf")  # of any epoch (differs under a selection score)
    lowest_epoch: int = -1  # the epoch of lowest_valid_loss (the plateau schedule's rewind)
    bad_epochs: int = 0  # epochs in a row that improved neither the selection nor the loss
    finished: bool = False
    train_seconds: float = 0.0  # time spent in training steps, across resumed runs
    # the global step at which the ranking loss joined (train.contrastive_from); -1: not yet
    ranking_step: int = -1
    # where a ranking stage that early stopping brought forward ends (-1: none; the budget or
    # the epochs end the run as usual)
    ranking_until: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)

    def start_afresh(self) -> None:
        """Forget every comparison with what was validated so far (the bundle's pick, the
        plateau schedule's rewind, early stopping): the next validation is kept, as a new
        run's first would be. The epoch counters and the history stay."""
        self.best_valid_loss = self.epochs_best_valid_loss = float("inf")
        self.lowest_valid_loss = float("inf")
        self.best_score = self.epochs_best_score = float("-inf")
        self.bad_epochs = 0

    def reopen(self, epochs: int, patience: int, max_minutes: float) -> None:
        """Recompute `finished` for (possibly changed) limits when a run is resumed.

        Why: a run stopped by its epoch count, its time budget or early stopping is marked
        finished; resuming it with more epochs, a larger budget or more patience must go on
        training, and resuming with smaller limits must not. A ranking stage that early
        stopping brought forward ends where it was set to (`ranking_until`), whatever the
        limits: early stopping has already ended the likelihood's part of the run.
        """
        out_of_time = max_minutes > 0 and self.train_seconds >= 60 * max_minutes
        staged_out = 0 <= self.ranking_until <= self.global_step
        self.finished = (self.epoch >= epochs or self.bad_epochs >= patience or out_of_time
                         or staged_out)


class _Counters(tf.train.experimental.PythonState):
    """A `TrainState` stored as JSON inside the checkpoint, next to the variables."""

    def __init__(self, state: TrainState) -> None:
        self.state = state

    def serialize(self) -> str:
        return json.dumps(asdict(self.state))

    def deserialize(self, string_value: Any) -> None:
        text = string_value.decode("utf-8") if isinstance(string_value, bytes) else string_value
        fields = json.loads(text)
        # checkpoints written before part-epochs could be kept: their best was an epoch's
        fields.setdefault("epochs_best_valid_loss", fields.get("best_valid_loss", float("inf")))
        fields.setdefault("epochs_best_score", fields.get("best_score", float("-inf")))
        self.state = TrainState(**fields)


# --- object paths ------------------------------------------------------------------------


def _children(obj: Any) -> Iterator[tuple[str, Any, bool]]:
    """(name, child, is_list_index) of the objects a model is made of."""
    if isinstance(obj, list | tuple):
        for index, item in enumerate(obj):
            yield str(index), item, True
    elif isinstance(obj, dict):
        for key, item in obj.items():
            yield str(key), item, False
    elif isinstance(obj, keras.layers.Layer | keras.random.SeedGenerator):
        yield from ((name, value, False) for name, value in vars(obj).items())


def _descend(obj: Any) -> bool:
    return isinstance(obj, list | tuple | dict | keras.layers.Layer | keras.random.SeedGenerator)


def variable_paths(model: keras.Layer) -> dict[str, keras.Variable]:
    """Every variable of `model` keyed by its object path (attribute names from the model).

    A variable reachable along several paths (a shared embedding, or Keras's own
    bookkeeping lists such as `_layers` and `_trainable_variables`) is keyed by the path
    with the fewest list indices, then the fewest private names, then the shortest: the one
    that depends least on creation order.
    """
    wanted = {id(v): v for v in model.variables}
    found: dict[int, str] = {}
    seen: set[int] = set()
    queue: list[tuple[tuple[int, int, int, str], int, Any]] = [((0, 0, 0, ""), 0, model)]
    tie = 1
    while queue:
        (indices, private, depth, path), _, obj = heapq.heappop(queue)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if id(obj) in wanted:
            found[id(obj)] = path
            continue
        for name, child, is_index in _children(obj):
            if id(child) in seen or not (id(child) in wanted or _descend(child)):
                continue
            rank = (
                indices + is_index,
                private + name.startswith("_"),
                depth + 1,
                f"{path}/{name}" if path else name,
            )
            heapq.heappush(queue, (rank, tie, child))
            tie += 1
    missing = [v.path for v in model.variables if id(v) not in found]
    if missing:
        raise ValueError(f"no attribute path leads to these variables: {missing}")
    return {found[id(v)]: v for v in model.variables}


def optimizer_paths(
    optimizer: keras.optimizers.Optimizer, model_paths: dict[str, keras.Variable]
) -> dict[str, keras.Variable]:
    """Optimizer variables keyed by the object path of the weight each slot belongs to.

    Keras names a slot `{weight.path with '/' as '_'}_{slot}` (e.g. `bridge_kernel_momentum`);
    that name, valid within this process, ties the slot to its weight, and the weight's
    object path makes a key that does not depend on order or auto-generated names.
    """
    by_name = {v.path.replace("/", "_"): path for path, v in model_paths.items()}
    keys: dict[str, keras.Variable] = {}
    for variable in optimizer.variables:
        owner = max((n for n in by_name if variable.name.startswith(n + "_")), key=len, default="")
        if owner:
            key = f"{_SLOTS}{by_name[owner]}/{variable.name[len(owner) + 1 :]}"
        else:
            key = f"optimizer/{variable.name}"
        if key in keys:
            raise ValueError(f"two optimizer variables would be saved as {key}")
        keys[key] = variable
    return keys


def tracked_variables(
    model: keras.Model, optimizer: keras.optimizers.Optimizer
) -> dict[str, tf.Variable]:
    """Every variable a checkpoint holds for `model` and `optimizer`, keyed as stored."""
    model_paths = variable_paths(model)
    everything = {f"model/{p}": v for p, v in model_paths.items()}
    everything.update(optimizer_paths(optimizer, model_paths))
    return {key: variable.value for key, variable in everything.items()}  # the tf.Variables


def trained_variables(
    model: keras.Model, optimizer: keras.optimizers.Optimizer
) -> dict[str, tf.Variable]:
    """The trainable weights and the optimizer's slots, keyed as stored: what training
    changes, without the step count, the rate or dropout's seed state."""
    return {
        key: variable
        for key, variable in tracked_variables(model, optimizer).items()
        if (key.startswith("model/") and variable.trainable) or key.startswith(_SLOTS)
    }


def _checkpoint(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    state: TrainState,
    extra: Mapping[str, tf.Variable] | None,
) -> tuple[tf.train.Checkpoint, _Counters, dict[str, Any]]:
    variables = tracked_variables(model, optimizer)
    variables.update(extra or {})
    counters = _Counters(state)
    return tf.train.Checkpoint(variables=variables, state=counters), counters, variables


def _manager(checkpoint: tf.train.Checkpoint, directory: Path) -> tf.train.CheckpointManager:
    return tf.train.CheckpointManager(
        checkpoint, str(directory), max_to_keep=KEEP, checkpoint_name=CHECKPOINT_NAME
    )


def _number(prefix: str | None) -> int:
    return int(prefix.rsplit("-", 1)[1]) if prefix else 0


# --- save and load -----------------------------------------------------------------------


def save_checkpoint(
    directory: Path,
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    state: TrainState,
    extra: Mapping[str, tf.Variable] | None = None,
) -> None:
    """Write a new checkpoint (never overwriting one) and make it the latest. `extra`: more
    variables of the run, keyed by a path of their own (the plateau schedule's `Rewind`)."""
    checkpoint, _, _ = _checkpoint(model, optimizer, state, extra)
    manager = _manager(checkpoint, directory)
    manager.save(checkpoint_number=_number(manager.latest_checkpoint) + 1)


def latest_checkpoint(directory: Path) -> str:
    """The prefix of the newest complete checkpoint in `directory`."""
    prefix = tf.train.latest_checkpoint(str(directory))
    if prefix is None:
        raise FileNotFoundError(f"{directory}: no checkpoint to resume from")
    return prefix


def read_state(directory: Path) -> TrainState:
    """The counters of the latest checkpoint, without building a model."""
    prefix = latest_checkpoint(directory)
    try:
        raw = tf.train.load_checkpoint(prefix).get_tensor(_STATE_KEY)
    except (tf.errors.OpError, ValueError) as exc:
        raise ValueError(f"{prefix}: unreadable checkpoint: {exc}") from exc
    counters = _Counters(TrainState())
    counters.deserialize(raw)
    return counters.state


def load_checkpoint(
    directory: Path,
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    extra: Mapping[str, tf.Variable] | None = None,
) -> TrainState:
    """Restore variables in place (`extra` as saved); the optimizer must be built already.

    Every variable must be found under its path with its shape, and the checkpoint must hold
    nothing else: otherwise the error names what differs (another config, another model).
    """
    prefix = latest_checkpoint(directory)
    checkpoint, counters, variables = _checkpoint(model, optimizer, TrainState(), extra)
    try:
        stored = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as exc:
        raise ValueError(f"{prefix}: unreadable checkpoint: {exc}") from exc
    _check_matches(prefix, stored, variables)
    checkpoint.restore(prefix).assert_existing_objects_matched()
    return counters.state


def _stored_key(path: str) -> str:
    """How `tf.train.Checkpoint` names a value stored under dictionary key `path`."""
    escaped = path.replace(".", "..").replace("/", ".S")
    return f"variables/{escaped}/.ATTRIBUTES/VARIABLE_VALUE"


def _path_of(key: str) -> str:
    """The dictionary key back from a stored name (the inverse of `_stored_key`)."""
    escaped = key.removeprefix("variables/").removesuffix("/.ATTRIBUTES/VARIABLE_VALUE")
    return escaped.replace("..", "\0").replace(".S", "/").replace("\0", ".")


def _check_matches(prefix: str, stored: dict[str, list[int]], variables: dict[str, Any]) -> None:
    expected = {_stored_key(path): (path, tuple(v.shape)) for path, v in variables.items()}
    saved = {k: tuple(s) for k, s in stored.items() if k.startswith("variables/")}
    problems = [
        f"{path} has shape {saved[k]}, expected {shape}"
        for k, (path, shape) in sorted(expected.items())
        if k in saved and saved[k] != shape
    ]
    problems += [f"{expected[k][0]} missing" for k in sorted(set(expected) - set(saved))]
    problems += [f"unexpected {_path_of(k)}" for k in sorted(set(saved) - set(expected))]
    if problems:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" * (len(problems) > 5))
        raise ValueError(
            f"{prefix}: does not fit this model and optimizer: {shown}. "
            "Was it written with another config?"
        )
