"""Restrict an attention distribution to the cells an image's support covers.

Images of different sizes are batched by zero-padding their low-resolution
views to a common shape; a *support* ``(B, *L)`` marks, per data point, the
low-resolution pixels that are its own (and inside its foreground mask).
``RestrictAttention`` zeroes the attention of every cell whose centre lies
outside the support and renormalises, so positions outside an image (or its
mask) are never sampled.
"""

import keras
from keras import ops

from .. import checks

__all__ = ["RestrictAttention", "support_cells"]

# Valid cells are floored at this probability before renormalising: a valid
# cell then always outranks an invalid one (probability 0) when sampling, and
# a mass that underflowed to 0 becomes the uniform distribution over the
# valid cells. It is far below float32's resolution next to 1, so it changes
# no attention that has not underflowed.
_FLOOR = 1e-30


def _spatial_extents(x, start):
    """The extents of the axes of ``x`` from ``start`` on: ints where known
    statically, scalar tensors otherwise."""
    static = tuple(x.shape)
    dynamic = ops.shape(x)
    return [
        static[axis] if static[axis] is not None else dynamic[axis]
        for axis in range(start, len(static))
    ]


def support_cells(support, attention_shape, receptive_field=0):
    """The support sampled at the centres of the attention cells.

    Cell ``s`` of an attention map of spatial shape ``S`` computed on a low
    view of spatial shape ``L`` is centred at the low-resolution coordinate
    ``receptive_field / 2 + (s + 0.5) * (L - receptive_field) / S`` (the
    mapping of ``SamplePatches``); its value here is the support's pixel at
    that coordinate, floored (clipped into ``[0, L - 1]``).

    Args:
        support: ``(B, *L)`` tensor.
        attention_shape: the ``ndim`` spatial extents ``S`` (ints or scalar
            tensors).
        receptive_field: int, the attention network's receptive field.

    Returns:
        ``(B, *S)`` float32 tensor.

    Example:
        >>> import numpy as np
        >>> from keras import ops
        >>> from ats.core.support import support_cells
        >>> support = np.zeros((1, 4, 4), "float32")
        >>> support[0, :2, :2] = 1
        >>> ops.convert_to_numpy(support_cells(support, (2, 2)))[0].tolist()
        [[1.0, 0.0], [0.0, 0.0]]
    """
    support = ops.cast(support, "float32")
    low = _spatial_extents(support, 1)
    if receptive_field == 0 and all(
        isinstance(a, int) and a == b for a, b in zip(attention_shape, low)
    ):
        return support  # cell s is centred at s + 0.5: the support itself
    cells = support
    for axis, (size_low, size_att) in enumerate(zip(low, attention_shape)):
        s = ops.cast(ops.arange(size_att), "float32")
        size_low_f = ops.cast(size_low, "float32")
        centre = receptive_field / 2 + (s + 0.5) * (
            (size_low_f - receptive_field) / ops.cast(size_att, "float32")
        )
        index = ops.clip(
            ops.cast(ops.floor(centre), "int32"), 0, ops.cast(size_low, "int32") - 1
        )
        cells = ops.take(cells, index, axis=axis + 1)
    return cells


@keras.saving.register_keras_serializable(package="ats")
class RestrictAttention(keras.layers.Layer):
    """Restrict an attention distribution to the cells on a support.

    A cell is *valid* when its centre (low-resolution coordinate
    ``receptive_field / 2 + (s + 0.5) * (L - receptive_field) / S``,
    floored; the mapping ``SamplePatches`` reads patches with) lies on a
    support pixel greater than 0.5. The attention of the other cells is set
    to 0 and the valid cells' attention, floored at ``1e-30``, is divided by
    its sum, so it sums to 1 again.

    Finite fallbacks (never NaN, values nor gradients):

    * the restricted mass underflows to 0 but valid cells exist: uniform
      over the valid cells (what the floor gives);
    * no cell is valid (an empty support): the attention unchanged.

    Sampling (``ats.core.sample``) draws a cell of probability 0 only after
    every cell of positive probability, so a data point with at least
    ``n_patches`` valid cells never gets a patch centred off its support.

    Args:
        receptive_field: int >= 0, the attention network's receptive field
            (0 for ``padding="same"`` networks).
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ...).

    Input:
        ``[attention (B, *S), support (B, *L)]``: an attention distribution
        over ``S`` cells (no channel axis) computed on a low view of spatial
        shape ``L``, and that low view's support (e.g. 1 inside the image
        and its foreground mask, 0 on padding).

    Returns:
        ``(B, *S)`` float32, the restricted attention.

    Example:
        >>> import numpy as np
        >>> from ats.core import RestrictAttention
        >>> attention = np.full((1, 2, 2), 0.25, "float32")
        >>> support = np.array([[[1, 1], [0, 0]]], "float32")
        >>> restricted = RestrictAttention()([attention, support])
        >>> np.asarray(restricted).tolist()
        [[[0.5, 0.5], [0.0, 0.0]]]
    """

    def __init__(self, receptive_field=0, **kwargs):
        super().__init__(**kwargs)
        self.receptive_field = checks.integer(
            "receptive_field",
            receptive_field,
            minimum=0,
            where=type(self).__name__,
        )
        self.autocast = False
        self.built = True

    def _check(self, shape_att, shape_support):
        where = type(self).__name__
        if len(shape_support) != len(shape_att):
            raise ValueError(
                f"{where}: `support` must have shape (B, *L) with as many "
                f"spatial axes as `attention` {tuple(shape_att)}, got "
                f"{tuple(shape_support)}"
            )
        for axis, (s, size) in enumerate(zip(shape_att[1:], shape_support[1:])):
            if s is not None and size is not None and s > size:
                raise ValueError(
                    f"{where}: the attention's spatial shape "
                    f"{tuple(shape_att[1:])} must not exceed the support's "
                    f"{tuple(shape_support[1:])} (axis {axis})"
                )
        if None not in (shape_att[0], shape_support[0]) and (
            shape_att[0] != shape_support[0]
        ):
            raise ValueError(
                f"{where}: `support` must have the batch size of "
                f"`attention` ({shape_att[0]}), got {shape_support[0]}"
            )

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                f"{type(self).__name__} must be called on [attention, support], "
                f"got {type(inputs).__name__}"
            )
        attention, support = inputs
        attention = ops.cast(attention, "float32")
        self._check(tuple(attention.shape), tuple(support.shape))
        valid = support_cells(
            support, _spatial_extents(attention, 1), self.receptive_field
        )
        axes = tuple(range(1, len(attention.shape)))
        kept = ops.where(valid > 0.5, ops.maximum(attention, _FLOOR), 0.0)
        # Normalised through the largest entry (a constant for the gradient:
        # the result does not depend on it), so that neither the value nor
        # the gradient overflows when the mass is tiny; the safe divisions
        # keep NaN out of the branch not taken (an empty support).
        peak = ops.stop_gradient(ops.max(kept, axis=axes, keepdims=True))
        any_valid = peak > 0
        inverse_peak = 1.0 / ops.where(any_valid, peak, 1.0)
        mass = ops.sum(kept, axis=axes, keepdims=True) * inverse_peak
        factor = inverse_peak / ops.where(any_valid, mass, 1.0)
        return ops.where(any_valid, kept * factor, attention)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def compute_output_spec(self, inputs):
        attention, _ = inputs
        return keras.KerasTensor(tuple(attention.shape), dtype="float32")

    def get_config(self):
        return {**super().get_config(), "receptive_field": self.receptive_field}
