"""Copy fixed-size patches out of a batch of images, signals or volumes."""

import keras
from keras import ops

from .. import checks
from ..backends import implementation as implementation_of


def extract_patches(x, offsets, size, data_format=None, implementation="auto"):
    """Copy the patches of ``x`` whose top-left corners are ``offsets``.

    Patches may overhang the border of ``x``: the pixels outside are zeros.
    Indices are computed within each image (not across the flattened batch),
    so a batch may hold more than ``2**31`` pixels in all as long as each
    image holds fewer. The result is a copy: no gradient flows into ``x``.

    The generic implementation gathers every pixel with ``keras.ops``. Where
    a backend has a measurably faster way (``benchmarks/extract_patches.py``)
    ``"auto"`` uses it (``ats.backends.<backend>.patches.extract_patches``):
    on JAX one fused pad-and-slice per patch (the padded image is never
    materialized), on PyTorch one slice copy per patch. Both are tested
    against the same reference as the generic one.

    Args:
        x: ``(B, *spatial, C)`` tensor (``(B, C, *spatial)`` for
            ``channels_first``) with 1 to 3 spatial dimensions, of any dtype.
        offsets: ``(B, N, ndim)`` integer top-left corners.
        size: tuple of ``ndim`` positive ints, the patch size.
        data_format: ``"channels_last"`` or ``"channels_first"``; defaults to
            ``keras.config.image_data_format()``.
        implementation: ``"auto"`` (the backend's fast path if it has one),
            ``"generic"`` or ``"fast"`` (an error where there is none).

    Returns:
        ``(B, N, *size, C)`` (or ``(B, N, C, *size)``) tensor of ``x``'s dtype.

    Example:
        >>> import numpy as np
        >>> from keras import ops
        >>> from ats.ops import extract_patches
        >>> x = np.arange(16, dtype="uint8").reshape(1, 4, 4, 1)
        >>> patches = extract_patches(x, [[[1, 1], [3, 3]]], (2, 2))
        >>> ops.convert_to_numpy(patches)[0, :, :, :, 0].tolist()
        [[[5, 6], [9, 10]], [[15, 0], [0, 0]]]
    """
    data_format = data_format or keras.config.image_data_format()
    checks.choice(
        "data_format",
        data_format,
        ("channels_last", "channels_first"),
        where="extract_patches",
    )
    x = ops.convert_to_tensor(x)
    rank = len(x.shape)
    if not 3 <= rank <= 5:
        raise ValueError(
            "extract_patches: `x` must have rank 3 to 5 (batch, 1 to 3 "
            f"spatial dimensions, channels), got shape {tuple(x.shape)}"
        )
    ndim = rank - 2
    size = checks.int_tuple("size", size, length=ndim, where="extract_patches")
    offsets = ops.cast(offsets, "int32")
    if len(offsets.shape) != 3 or offsets.shape[-1] not in (None, ndim):
        raise ValueError(
            f"extract_patches: `offsets` must have shape (B, N, {ndim}), got "
            f"{tuple(offsets.shape)}"
        )

    checks.choice(
        "implementation",
        implementation,
        ("auto", "generic", "fast"),
        where="extract_patches",
    )
    fast_path = implementation_of("patches", "extract_patches")
    if implementation == "fast" and fast_path is None:
        raise ValueError(
            "extract_patches: the backend "
            f"{keras.backend.backend()!r} has no fast path; use "
            "implementation='generic' or 'auto'"
        )
    symbolic = isinstance(x, keras.KerasTensor)
    if implementation != "generic" and fast_path is not None and not symbolic:
        return fast_path(x, offsets, size, data_format == "channels_last")
    return _extract_generic(x, offsets, size, data_format == "channels_last")


def _extract_generic(x, offsets, size, channels_last):
    """Gather every pixel of every patch with ``keras.ops``."""
    shape = ops.shape(x)
    batch = shape[0]
    spatial = shape[1:-1] if channels_last else shape[2:]
    channels = shape[-1] if channels_last else shape[1]
    n_patches = ops.shape(offsets)[1]

    pixel_index, inside = _patch_pixel_indices(offsets, size, spatial)
    pixel_index = ops.reshape(pixel_index, (batch, -1))
    inside = ops.reshape(inside, (batch, -1))

    x = ops.stop_gradient(x)
    if channels_last:
        pixels = ops.reshape(x, (batch, -1, channels))
        values = ops.take_along_axis(pixels, pixel_index[:, :, None], axis=1)
        values = ops.where(inside[:, :, None], values, ops.zeros_like(values))
        return ops.reshape(values, (batch, n_patches, *size, channels))
    pixels = ops.reshape(x, (batch, channels, -1))
    values = ops.take_along_axis(pixels, pixel_index[:, None, :], axis=2)
    values = ops.where(inside[:, None, :], values, ops.zeros_like(values))
    values = ops.reshape(values, (batch, channels, n_patches, *size))
    return ops.moveaxis(values, 1, 2)


def _patch_pixel_indices(offsets, size, spatial):
    """Row-major pixel index within its image of every pixel of every patch.

    Args:
        offsets: ``(B, N, ndim)`` int32 top-left corners.
        size: tuple of ``ndim`` ints.
        spatial: the ``ndim`` spatial dimensions of the image.

    Returns:
        ``(index, inside)``: ``(B, N, *size)`` int32 indices, clipped into the
        image, and a boolean mask of the pixels that really lie inside it.
    """
    ndim = len(size)
    index = 0
    inside = True
    stride = 1
    for d in reversed(range(ndim)):
        grid_shape = [1] * ndim
        grid_shape[d] = size[d]
        steps = ops.reshape(ops.arange(size[d], dtype="int32"), grid_shape)
        corner = offsets[:, :, d]
        for _ in range(ndim):
            corner = ops.expand_dims(corner, -1)
        coord = corner + steps
        extent = ops.cast(spatial[d], "int32")
        inside = ops.logical_and(inside, (coord >= 0) & (coord < extent))
        index = index + ops.clip(coord, 0, extent - 1) * stride
        stride = stride * extent
    return index, inside
