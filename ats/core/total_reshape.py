"""A reshape that includes the batch axis (patches into the batch and back)."""

import keras
from keras import ops

from .. import checks

__all__ = ["TotalReshape"]


@keras.saving.register_keras_serializable(package="ats")
class TotalReshape(keras.layers.Layer):
    """Reshape a tensor, batch axis included.

    ``keras.layers.Reshape`` keeps the batch axis untouched; this layer
    reshapes the whole tensor, which is needed to fold sampled patches into
    the batch and back, e.g. ``(B, N, h, w, C) -> (B * N, h, w, C)`` with
    ``shape=(-1, h, w, C)`` and ``(B * N, D) -> (B, N, D)`` with
    ``shape=(-1, N, D)``. At most one entry may be ``-1`` (inferred); it
    appears as ``None`` in :meth:`compute_output_shape`.

    Args:
        shape: Tuple/list of ints, the full target shape (batch axis
            included). Entries are positive or ``-1``.
        **kwargs: Base layer keyword arguments.

    Input shape:
        Arbitrary, with as many entries as ``shape`` implies.

    Output shape:
        ``shape`` (with ``-1`` as ``None``).

    Returns:
        The reshaped tensor, with the same dtype as the input (the layer
        does not autocast floats to its compute dtype).

    Example:
        >>> import numpy as np
        >>> from ats.core import TotalReshape
        >>> x = np.zeros((2, 5, 8, 8, 3))
        >>> tuple(TotalReshape((-1, 8, 8, 3))(x).shape)
        (10, 8, 8, 3)
    """

    def __init__(self, shape, **kwargs):
        # A pure reshape: keep the input dtype (no float autocasting).
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        where = type(self).__name__
        shape = checks.int_tuple("shape", shape, minimum=-1, where=where)
        if 0 in shape or shape.count(-1) > 1:
            checks.fail(
                "shape", "a tuple of ints >= 1 with at most one -1", shape, where
            )
        self.shape = shape
        self.supports_masking = False

    def call(self, inputs):
        return ops.reshape(inputs, self.shape)

    def compute_output_shape(self, input_shape):
        return tuple(None if d == -1 else d for d in self.shape)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(
            self.compute_output_shape(inputs.shape), dtype=inputs.dtype
        )

    def get_config(self):
        config = super().get_config()
        config.update({"shape": list(self.shape)})
        return config
