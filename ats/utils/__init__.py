"""Utility layers and regularizers for attention-sampling models.

Submodules:

* :mod:`ats.utils.layers`: small Keras layers used to build attention
  networks (:class:`~ats.utils.layers.SampleSoftmax`,
  :class:`~ats.utils.layers.L2Normalize`,
  :class:`~ats.utils.layers.ResizeImages`,
  :class:`~ats.utils.layers.TotalReshape`,
  :class:`~ats.utils.layers.ActivityRegularizer`) and training-time image
  augmentations (:class:`~ats.utils.layers.ImageLinearTransform`,
  :class:`~ats.utils.layers.ImagePan`).
* :mod:`ats.utils.regularizers`: regularizers for attention distributions
  (:func:`~ats.utils.regularizers.multinomial_entropy`,
  :class:`~ats.utils.regularizers.MultinomialEntropy`).
* :mod:`ats.utils.training`: the original library's ``Batcher`` and friends,
  batches of a sequence of single data points (imported on its own:
  ``from ats.utils.training import Batcher``).

Everything here uses only backend-agnostic Keras 3 APIs and is registered for
serialization under the ``"ats"`` package.

The original library's tensor helpers of this module (``to_float32`` and the
other ``to_<dtype>``, ``to_dtype``, ``to_tensor``, ``expand_many``) are still
here, deprecated: each warns with a ``DeprecationWarning`` giving its
``keras.ops`` equivalent.
"""

import functools
import sys
import warnings

from keras import ops

from ats.utils import layers, regularizers

__all__ = ["layers", "regularizers"]


def _to_dtype(x, type="float", width=32, sign=True):
    dtype = f"{'' if sign else 'u'}{type}{width}"
    return ops.cast(x, dtype)


def _to_tensor(x, dtype="int32"):
    # The original ignored ``dtype`` and always made int32 constants.
    return x if ops.is_tensor(x) else ops.convert_to_tensor(x, dtype="int32")


def _expand_many(x, axes):
    for axis in axes:
        x = ops.expand_dims(x, axis)
    return x


_DTYPES = {
    f"to_{name}": (type_, width)
    for name, type_, width in (
        ("float16", "float", 16),
        ("float32", "float", 32),
        ("float64", "float", 64),
        ("double", "float", 64),
        ("int8", "int", 8),
        ("int16", "int", 16),
        ("int32", "int", 32),
        ("int64", "int", 64),
    )
}


def _original_helper(name):
    """The original's helper ``name`` and its modern equivalent, or None."""
    if name in _DTYPES:
        type_, width = _DTYPES[name]
        helper = functools.partial(_to_dtype, type=type_, width=width, sign=True)
        return helper, f'keras.ops.cast(x, "{type_}{width}")'
    return {
        "to_dtype": (_to_dtype, 'keras.ops.cast(x, "float32")'),
        "to_tensor": (_to_tensor, 'keras.ops.convert_to_tensor(x, "int32")'),
        "expand_many": (
            _expand_many,
            "keras.ops.expand_dims once per axis (or keras.ops.reshape)",
        ),
    }.get(name)


def __getattr__(name):
    found = None if name.startswith("__") else _original_helper(name)
    if found is None:
        raise AttributeError(f"module 'ats.utils' has no attribute {name!r}")
    helper, modern = found
    # ``from ats.utils import name`` asks twice, first from importlib.
    if not sys._getframe(1).f_code.co_filename.startswith("<frozen importlib"):
        warnings.warn(
            f"ats.utils.{name} is the original library's helper: write {modern}",
            DeprecationWarning,
            stacklevel=2,
        )
    return helper
