"""What the workers of a multi-worker run (`MultiWorkerMirroredStrategy`) must agree on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf


def per_worker(
    strategy: tf.distribute.Strategy | None, values: Sequence[float], dtype: tf.DType
) -> np.ndarray | None:
    """Every replica's `values`, one row each, gathered on every worker of a multi-worker
    strategy; None under any other (or none), whose replicas share one process and so one
    set of values.

    Why: a decision each worker takes on values of its own (its clock, its choice of dtypes)
    may come out otherwise on another, and workers that differ drift apart or block each
    other in the next all-reduce. Every worker must call this at the same point: it is one
    collective operation."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None
    distributed = strategy.experimental_distribute_values_from_function(
        lambda _: tf.constant([list(values)], dtype))
    return strategy.gather(distributed, axis=0).numpy()
