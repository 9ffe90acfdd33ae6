"""A multi-resolution source over tensors held in memory."""

import keras
from keras import ops

from ..ops import extract_patches, patch_offsets
from .base import MultiResolutionBatch


class FromTensors(MultiResolutionBatch):
    """Levels given as tensors, lowest resolution first.

    Args:
        xs: list of tensors, one per level, each ``(B, *spatial, C)`` (or
            ``(B, C, *spatial)`` for ``channels_first``) with the same number
            of spatial dimensions.
        y: the targets, returned as given by ``targets()``.
        data_format: defaults to ``keras.config.image_data_format()``.

    Example:
        >>> source = FromTensors([x_low, x_high])
        >>> patches, corners = source.patches(samples, 0, (24, 24), (48, 48),
        ...                                   (32, 32), 0, 1)
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

    def patches(
        self,
        samples,
        offsets,
        sample_space,
        previous_patch_size,
        patch_size,
        fromlevel,
        tolevel,
    ):
        shape_from = ops.cast(self.spatial_shape(fromlevel), "float32")
        shape_to = ops.cast(self.spatial_shape(tolevel), "float32")
        corners = patch_offsets(
            samples,
            sample_space,
            previous_patch_size,
            patch_size,
            shape_to / shape_from,
            offsets,
        )
        patches = extract_patches(
            self._xs[tolevel], corners, patch_size, data_format=self._data_format
        )
        return patches, corners
