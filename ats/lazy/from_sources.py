"""A batch of host ``PatchSource`` s seen from inside a model."""

import keras
import numpy as np
from keras import ops

from ..core import MultiResolutionBatch
from ..data.sources import PatchReadError, get_source
from .host_call import host_call

__all__ = ["FromSources", "read_patches"]


def read_patches(x_high_ref, corners, size, channels, dtype):
    """Read one batch of patches from the sources ``x_high_ref`` points to.

    Runs on the host. Each row of ``x_high_ref`` names a live source and the
    spatial shape the model mapped positions with, which must be the
    source's.

    Args:
        x_high_ref: ``(B, 1 + ndim)`` int rows ``[source id, *spatial
            shape]`` (``PatchSource.reference()``).
        corners: ``(B, N, ndim)`` int top-left corners in the patch level.
        size: tuple of ``ndim`` ints, the patch size.
        channels: int, the channels the model expects.
        dtype: the dtype to return (the source's values are cast to it).

    Returns:
        ``(B, N, *size, channels)`` numpy array of ``dtype``.

    Raises:
        PatchReadError: a source is missing or does not match its
            reference, or a read failed; the message names the source file
            and the position.
    """
    x_high_ref = np.asarray(x_high_ref)
    corners = np.asarray(corners)
    out = np.empty((*corners.shape[:2], *size, channels), dtype=dtype)
    for b, (row, batch_corners) in enumerate(zip(x_high_ref, corners)):
        try:
            source = get_source(row[0])
        except LookupError as error:
            raise PatchReadError(f"batch item {b}: {error}") from None
        if (
            source.spatial_shape != tuple(row[1:].tolist())
            or source.shape[-1] != channels
        ):
            raise PatchReadError(
                f"{source.name}: batch item {b} refers to it with spatial "
                f"shape {tuple(row[1:].tolist())} and {channels} channel(s), "
                f"but the source has shape {source.shape}"
            )
        out[b] = source.read(batch_corners, size)
    return out


class FromSources(MultiResolutionBatch):
    """Host sources as a ``MultiResolutionBatch``: level 0 in the graph,
    level 1 read on the host.

    Level 0 is the batch of low-resolution views ``x_low`` (a tensor); level
    1 is the sources' patch levels, which the graph knows only by their
    references ``x_high_ref`` (``[source id, *spatial shape]`` rows).
    ``patches`` maps positions to corners exactly as ``FromTensors`` does
    (``MultiResolutionBatch.corners``, in the graph) and
    reads those patches on the host through ``ats.lazy.host_call``.

    Args:
        xs: ``[x_low, x_high_ref]``: ``(B, *L, C)`` (or ``(B, C, *L)``)
            tensor and ``(B, 1 + ndim)`` int32 tensor.
        data_format: defaults to ``keras.config.image_data_format()``.
    """

    def __init__(self, xs, data_format=None):
        self._x_low, self._x_high_ref = xs
        self._data_format = data_format or keras.config.image_data_format()

    def data(self, level):
        if level == 0:
            return self._x_low
        raise ValueError(
            "FromSources: the high-resolution level is never materialized; "
            "read patches of it with `patches`"
        )

    def spatial_shape(self, level):
        """Level 0: the static spatial shape of ``x_low``; level 1: the
        ``(B, ndim)`` int32 spatial shapes of the sources."""
        if level == 1:
            return self._x_high_ref[:, 1:]
        shape = self._x_low.shape
        return tuple(shape[1:-1] if self._data_format == "channels_last" else shape[2:])

    def read(self, corners, patch_size, level):
        if level != 1:
            raise ValueError(
                f"FromSources reads patches of level 1 (the sources), got level={level}"
            )
        channels_last = self._data_format == "channels_last"
        x_shape = self._x_low.shape
        channels = x_shape[-1] if channels_last else x_shape[1]
        size = tuple(patch_size)
        dtype = keras.backend.standardize_dtype(self._x_low.dtype)
        patches = host_call(
            lambda ref, c: read_patches(ref, c, size, channels, dtype),
            [self._x_high_ref, corners],
            (x_shape[0], corners.shape[1], *size, channels),
            dtype,
            batched=True,
        )
        if not channels_last:
            patches = ops.moveaxis(patches, -1, 2)
        return patches
