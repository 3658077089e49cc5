"""Numeric decoding options as graph inputs.

Every option that does not change the shape of the computation travels into the compiled
function as a scalar tensor, so a new temperature, length limit or penalty reuses the traced
graph instead of retracing it. The sampler's random numbers travel the same way, as a
[rows, steps] tensor (see `nlp.decoding.draws`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from nlp.decoding.options import DecodeOptions


class DecodeParams(NamedTuple):
    """Tensors read inside the decoding loop: scalars, and the sampler's draws."""

    max_length: tf.Tensor  # int32
    max_length_ratio: tf.Tensor  # float32
    min_length: tf.Tensor  # int32
    length_penalty: tf.Tensor  # float32, GNMT alpha
    coverage_penalty: tf.Tensor  # float32, GNMT beta
    suppress_unk: tf.Tensor  # bool
    temperature: tf.Tensor  # float32
    top_k: tf.Tensor  # int32
    top_p: tf.Tensor  # float32
    diversity_penalty: tf.Tensor  # float32, diverse beam search lambda
    draws: tf.Tensor  # [rows, steps] float32 uniforms in [0, 1); [rows, 0] when not sampling

    @classmethod
    def signature(cls) -> DecodeParams:
        """The `input_signature` entry: one TensorSpec per field."""
        scalars = {name: tf.TensorSpec([], dtype) for name, dtype in _DTYPES.items()}
        return cls(**scalars, draws=tf.TensorSpec([None, None], tf.float32))

    @classmethod
    def from_options(cls, options: DecodeOptions, draws: np.ndarray) -> DecodeParams:
        scalars = {name: np.asarray(getattr(options, name), dtype.as_numpy_dtype)
                   for name, dtype in _DTYPES.items()}
        return cls(**scalars, draws=np.asarray(draws, np.float32))


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
    "diversity_penalty": tf.float32,
}
