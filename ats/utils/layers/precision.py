"""The dtypes the utility layers compute in."""

import keras
from keras import ops

__all__ = [
    "LOW_PRECISION_FLOATS",
    "at_least_float32",
    "to_compute_float",
]

LOW_PRECISION_FLOATS = ("float16", "bfloat16")


def at_least_float32(x):
    """Convert ``x`` to a tensor of dtype float32, or float64 if it is one.

    Low precision floats (float16, bfloat16) and integers are promoted to
    float32; float64 is kept as is.
    """
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) == "float64":
        return x
    return ops.cast(x, "float32")


def to_compute_float(layer, x):
    """Convert ``x`` to a floating tensor of the layer's compute dtype."""
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype != layer.compute_dtype:
        x = ops.cast(x, layer.compute_dtype)
    return x
