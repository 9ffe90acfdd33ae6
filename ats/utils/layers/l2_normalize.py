"""Normalization to unit L2 norm, safe at zero."""

import keras
from keras import ops

from ... import checks
from .precision import at_least_float32, to_compute_float

__all__ = ["L2Normalize"]


@keras.saving.register_keras_serializable(package="ats")
class L2Normalize(keras.layers.Layer):
    """Normalize the input to unit L2 norm along ``axis``.

    Computes ``x / sqrt(max(sum(x ** 2, axis), epsilon))``. The ``max``
    keeps both the output and its gradient finite at ``x = 0`` (where the
    output is 0). The norm is computed in float32 for low precision inputs.

    Args:
        axis: Int or tuple of ints, the axis (axes) to normalize along.
            Defaults to ``-1``.
        epsilon: Strictly positive real number, lower bound of the squared
            norm. Defaults to ``1e-12``.
        **kwargs: Base layer keyword arguments.

    Input shape:
        Arbitrary.

    Output shape:
        Same as the input.

    Returns:
        The normalized tensor.

    Example:
        >>> import numpy as np
        >>> from keras import ops
        >>> from ats.utils.layers import L2Normalize
        >>> y = L2Normalize()(np.array([[3.0, 4.0], [0.0, 0.0]]))
        >>> ops.convert_to_numpy(y).astype("float64").round(6).tolist()
        [[0.6, 0.8], [0.0, 0.0]]
    """

    def __init__(self, axis=-1, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        where = type(self).__name__
        if isinstance(axis, (list, tuple)):
            self.axis = list(checks.int_tuple("axis", axis, minimum=None, where=where))
        else:
            self.axis = checks.integer("axis", axis, where=where)
        self.epsilon = checks.real(
            "epsilon", epsilon, 0, exclusive_minimum=True, where=where
        )
        self.supports_masking = True

    def _axes(self):
        return self.axis if isinstance(self.axis, int) else tuple(self.axis)

    def build(self, input_shape):
        rank = len(input_shape)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for a in axes:
            if not -rank <= a < rank:
                checks.fail(
                    "axis",
                    f"in [-{rank}, {rank}) for inputs of shape {tuple(input_shape)}",
                    self.axis,
                    type(self).__name__,
                )
        self.built = True

    def call(self, inputs):
        x = to_compute_float(self, inputs)
        x32 = at_least_float32(x)
        sq = ops.sum(ops.square(x32), axis=self._axes(), keepdims=True)
        eps = ops.cast(self.epsilon, x32.dtype)
        y = x32 / ops.sqrt(ops.maximum(sq, eps))
        return ops.cast(y, x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "epsilon": self.epsilon})
        return config
