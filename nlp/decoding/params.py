"""Numeric decoding options as graph inputs.

Every option that does not change the shape of the computation travels into the compiled
function as a scalar tensor, so a new temperature, length limit or penalty reuses the traced
graph instead of retracing it. Which options those are, and their dtypes, is said once, on the
`DecodeOptions` fields (`tensor=` in `nlp.decoding.options.option`). The sampler's random
numbers travel the same way, as a [rows, steps] tensor (see `nlp.decoding.draws`).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, cast

import numpy as np
import tensorflow as tf

from nlp.decoding.options import DecodeOptions, tensor_options

_DTYPES: dict[str, tf.DType] = {name: tf.as_dtype(kind) for name, kind in tensor_options().items()}


# the fields come from `tensor_options()` at import time, which mypy cannot see: typed as Any
_Fields: Any = cast(Any, namedtuple)("DecodeParams", [*_DTYPES, "draws"])


class DecodeParams(_Fields):
    """Tensors read inside the decoding loop: one scalar per tensor option of `DecodeOptions`
    (`params.max_length` int32, `params.temperature` float32, `params.suppress_unk` bool, ...)
    and `draws`, [rows, steps] float32 uniforms in [0, 1) ([rows, 0] when not sampling)."""

    __slots__ = ()

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

    @classmethod
    def from_tensors(cls, draws: Any, **scalars: Any) -> DecodeParams:
        """Scalars given as tensors (the exported signature's inputs); an option the caller
        does not give takes the `DecodeOptions` default."""
        defaults = DecodeOptions()
        filled = {name: scalars.pop(name) if name in scalars
                  else tf.constant(getattr(defaults, name), dtype)
                  for name, dtype in _DTYPES.items()}
        if scalars:
            raise TypeError(f"not decoder tensor options: {', '.join(sorted(scalars))}")
        return cls(**filled, draws=draws)
