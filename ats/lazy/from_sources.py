"""A batch of host ``PatchSource`` s seen from inside a model."""

import keras
import numpy as np
from keras import ops

from ..core import MultiResolutionBatch
from ..data.sources import PatchReadError, get_source, read_many
from ..ops import patch_offsets
from .host_call import host_call

__all__ = ["FromSources", "read_patches"]


def read_patches(x_high_ref, corners, size, channels, dtype):
    """Read one batch of patches from the sources ``x_high_ref`` points to.

    Runs on the host. Each row of ``x_high_ref`` names a live source and the
    spatial shape the model mapped positions with, which must be the
    source's (columns ``1 .. ndim``; a wide row's last ``ndim`` columns, the
    image's own low shape, are not read here). All the batch's patches are
    read at once on the reading thread pool (``ats.data.read_many``, size
    ``ats.data.read_threads()``). They cannot be read ahead of the step:
    the positions are drawn in it, from the attention of the current
    weights.

    Args:
        x_high_ref: ``(B, 1 + ndim)`` int rows ``[source id, *spatial
            shape]`` (``PatchSource.reference()``), or ``(B, 1 + 2 * ndim)``
            wide rows ``[source id, *spatial shape, *own low shape]``
            (``PatchSource.reference(low_shape)``).
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
    ndim = len(size)
    out = np.empty((*corners.shape[:2], *size, channels), dtype=dtype)
    requests = []
    for b, (row, batch_corners) in enumerate(zip(x_high_ref, corners)):
        try:
            source = get_source(row[0])
        except LookupError as error:
            raise PatchReadError(f"batch item {b}: {error}") from None
        shape = tuple(row[1 : 1 + ndim].tolist())
        if source.spatial_shape != shape or source.shape[-1] != channels:
            raise PatchReadError(
                f"{source.name}: batch item {b} refers to it with spatial "
                f"shape {shape} and {channels} channel(s), "
                f"but the source has shape {source.shape}"
            )
        requests.append((source, batch_corners))
    for b, patches in enumerate(read_many(requests, size)):
        out[b] = patches
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

    Wide rows ``[source id, *spatial shape, *own low shape]``
    (``PatchSource.reference(low_shape)``, as ``BucketedSequence`` yields
    them for low views zero-padded to a common shape) change one thing: the
    scale from level 0 to level 1 is each image's own ``spatial shape / own
    low shape`` instead of ``spatial shape / shape of x_low``, so a position
    maps to the same full-resolution pixel whatever the image is padded to.

    Args:
        xs: ``[x_low, x_high_ref]``: ``(B, *L, C)`` (or ``(B, C, *L)``)
            tensor and ``(B, 1 + ndim)`` or ``(B, 1 + 2 * ndim)`` int32
            tensor.
        data_format: defaults to ``keras.config.image_data_format()``.

    Example:
        >>> import numpy as np
        >>> from keras import ops
        >>> from ats.lazy import FromSources
        >>> x_low = np.zeros((1, 8, 8, 1), "float32")  # a 4x2 view, padded
        >>> wide_row = np.array([[0, 400, 200, 4, 2]], "int32")
        >>> batch = FromSources([x_low, wide_row])
        >>> corners = batch.corners([[[1, 1]]], 0.0, (8, 8), (8, 8), (10, 10), 0, 1)
        >>> ops.convert_to_numpy(corners).tolist()  # centre (1.5, 1.5) * 100
        [[[145, 145]]]
    """

    def __init__(self, xs, data_format=None):
        self._x_low, self._x_high_ref = xs
        self._data_format = data_format or keras.config.image_data_format()
        self._ndim = len(self._x_low.shape) - 2
        width = self._x_high_ref.shape[-1]
        if width not in (self._ndim + 1, 2 * self._ndim + 1):
            raise ValueError(
                "FromSources: `x_high_ref` must have shape (B, 1 + ndim) or "
                f"(B, 1 + 2 * ndim) = (B, {self._ndim + 1}) or "
                f"(B, {2 * self._ndim + 1}) for x_low of shape "
                f"{tuple(self._x_low.shape)}, got {tuple(self._x_high_ref.shape)}"
            )
        self.wide = width == 2 * self._ndim + 1

    def data(self, level):
        if level == 0:
            return self._x_low
        raise ValueError(
            "FromSources: the high-resolution level is never materialized; "
            "read patches of it with `patches`"
        )

    def spatial_shape(self, level):
        """Level 0: the spatial shape of ``x_low`` (a tuple of ints, or an
        ``(ndim,)`` int32 tensor when a size is known only when the step
        runs); level 1: the ``(B, ndim)`` int32 spatial shapes of the
        sources (columns ``1 .. ndim`` of ``x_high_ref``)."""
        if level == 1:
            return self._x_high_ref[:, 1 : 1 + self._ndim]
        start = 1 if self._data_format == "channels_last" else 2
        static = tuple(self._x_low.shape)[start : start + self._ndim]
        if None not in static:
            return static
        dynamic = ops.shape(self._x_low)
        return ops.stack(
            [
                ops.cast(dynamic[start + axis] if size is None else size, "int32")
                for axis, size in enumerate(static)
            ]
        )

    def corners(
        self,
        samples,
        offsets,
        sample_space,
        previous_patch_size,
        patch_size,
        fromlevel,
        tolevel,
    ):
        """``MultiResolutionBatch.corners``; with wide rows, from level 0 to
        level 1 the scale is each image's ``spatial shape / own low
        shape``."""
        if not (self.wide and (fromlevel, tolevel) == (0, 1)):
            return super().corners(
                samples,
                offsets,
                sample_space,
                previous_patch_size,
                patch_size,
                fromlevel,
                tolevel,
            )
        high = ops.cast(self.spatial_shape(1), "float32")
        own_low = ops.cast(self._x_high_ref[:, 1 + self._ndim :], "float32")
        scale = (high / ops.maximum(own_low, 1.0))[:, None, :]
        return patch_offsets(
            samples, sample_space, previous_patch_size, patch_size, scale, offsets
        )

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
