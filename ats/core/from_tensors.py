"""A multi-resolution source over tensors held in memory."""

import keras
from keras import ops

from ..ops import extract_patches
from .multi_resolution import MultiResolutionBatch


class FromTensors(MultiResolutionBatch):
    """Levels given as tensors, lowest resolution first.

    Args:
        xs: list of tensors, one per level, each ``(B, *spatial, C)`` (or
            ``(B, C, *spatial)`` for ``channels_first``) with the same number
            of spatial dimensions.
        y: the targets, returned as given by ``targets()``.
        data_format: defaults to ``keras.config.image_data_format()``.

    Example:
        >>> import numpy as np
        >>> from ats.core import FromTensors
        >>> x_low, x_high = np.ones((2, 48, 48, 3)), np.ones((2, 192, 192, 3))
        >>> samples = np.zeros((2, 5, 2), "int32")
        >>> patches, corners = FromTensors([x_low, x_high]).patches(
        ...     samples, 0, (24, 24), (48, 48), (32, 32), 0, 1)
        >>> tuple(patches.shape), tuple(corners.shape)
        ((2, 5, 32, 32, 3), (2, 5, 2))
    """

    def __init__(self, xs, y=None, data_format=None):
        self._xs = list(xs)
        self._y = y
        self._data_format = data_format or keras.config.image_data_format()

    def data(self, level):
        return self._xs[level]

    def targets(self):
        return self._y

    def spatial_shape(self, level):
        """The spatial shape of ``level``, static where it is known."""
        x = self._xs[level]
        static = x.shape[1:-1] if self._data_format == "channels_last" else x.shape[2:]
        if None not in static:
            return tuple(static)
        dynamic = ops.shape(x)
        return dynamic[1:-1] if self._data_format == "channels_last" else dynamic[2:]

    def read(self, corners, patch_size, level):
        return extract_patches(
            self._xs[level], corners, patch_size, data_format=self._data_format
        )
