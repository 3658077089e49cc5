"""Numeric decoding options as graph inputs.

Every option that does not change the shape of the computation travels into the compiled
function as a scalar tensor, so a new temperature, length limit or penalty reuses the traced
graph instead of retracing it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from nlp.decoding.options import DecodeOptions


class DecodeParams(NamedTuple):
    """Scalar tensors read inside the decoding loop."""

    max_length: tf.Tensor  # int32
    max_length_ratio: tf.Tensor  # float32
    min_length: tf.Tensor  # int32
    length_penalty: tf.Tensor  # float32, GNMT alpha
    coverage_penalty: tf.Tensor  # float32, GNMT beta
    suppress_unk: tf.Tensor  # bool
    temperature: tf.Tensor  # float32
    top_k: tf.Tensor  # int32
    top_p: tf.Tensor  # float32
    seed: tf.Tensor  # int32 (XLA's stateless sampling takes no int64 seed)

    @classmethod
    def signature(cls) -> DecodeParams:
        """The `input_signature` entry: one scalar TensorSpec per field."""
        return cls(**{name: tf.TensorSpec([], dtype) for name, dtype in _DTYPES.items()})

    @classmethod
    def from_options(cls, options: DecodeOptions, seed: int) -> DecodeParams:
        values = {name: getattr(options, name) for name in _DTYPES if name != "seed"}
        values["seed"] = seed
        return cls(**{name: np.asarray(values[name], dtype.as_numpy_dtype)
                      for name, dtype in _DTYPES.items()})


_DTYPES: dict[str, tf.DType] = {
    "max_length": tf.int32,
    "max_length_ratio": tf.float32,
    "min_length": tf.int32,
    "length_penalty": tf.float32,
    "coverage_penalty": tf.float32,
    "suppress_unk": tf.bool,
    "temperature": tf.float32,
    "top_k": tf.int32,
    "top_p": tf.float32,
    "seed": tf.int32,
}
