"""Copy fixed-size patches out of a batch of images, signals or volumes."""

import functools

import keras
import numpy as np
from keras import ops


def _validate_size(size, ndim):
    """Return ``size`` as a tuple of ``ndim`` positive ints or raise."""
    try:
        size = tuple(size)
    except TypeError:
        raise TypeError(
            f"extract_patches: `size` must be a tuple of {ndim} positive "
            f"integers, got {size!r}"
        ) from None
    if len(size) != ndim or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size
    ):
        raise ValueError(
            f"extract_patches: `size` must be a tuple of {ndim} positive "
            f"integers (one per spatial dimension of `x`), got {size!r}"
        )
    return size


def extract_patches(x, offsets, size, data_format=None, implementation="auto"):
    """Copy the patches of ``x`` whose top-left corners are ``offsets``.

    Patches may overhang the border of ``x``: the pixels outside are zeros.
    Indices are computed within each image (not across the flattened batch),
    so a batch may hold more than ``2**31`` pixels in all as long as each
    image holds fewer. The result is a copy: no gradient flows into ``x``.

    The generic implementation gathers every pixel with ``keras.ops``. Where
    a backend has a measurably faster way (``benchmarks/extract_patches.py``)
    ``"auto"`` uses it: on JAX one fused pad-and-slice per patch (the padded
    image is never materialized), on PyTorch one slice copy per patch. Both
    are tested against the same reference as the generic one.

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
        >>> x = np.arange(16, dtype="uint8").reshape(1, 4, 4, 1)
        >>> extract_patches(x, [[[1, 1], [3, 3]]], (2, 2))[0, :, :, :, 0]
        # [[[5, 6], [9, 10]], [[15, 0], [0, 0]]]
    """
    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "extract_patches: `data_format` must be 'channels_last' or "
            f"'channels_first', got {data_format!r}"
        )
    x = ops.convert_to_tensor(x)
    rank = len(x.shape)
    if not 3 <= rank <= 5:
        raise ValueError(
            "extract_patches: `x` must have rank 3 to 5 (batch, 1 to 3 "
            f"spatial dimensions, channels), got shape {tuple(x.shape)}"
        )
    ndim = rank - 2
    size = _validate_size(size, ndim)
    offsets = ops.cast(offsets, "int32")
    if len(offsets.shape) != 3 or offsets.shape[-1] not in (None, ndim):
        raise ValueError(
            f"extract_patches: `offsets` must have shape (B, N, {ndim}), got "
            f"{tuple(offsets.shape)}"
        )

    if implementation not in ("auto", "generic", "fast"):
        raise ValueError(
            "extract_patches: `implementation` must be 'auto', 'generic' or "
            f"'fast', got {implementation!r}"
        )
    fast_path = _FAST_PATHS.get(keras.backend.backend())
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


def _extract_jax(x, offsets, size, channels_last):
    """One ``dynamic_slice`` per patch from the zero-padded image.

    Under ``jit`` XLA fuses the pad into the slices, so the padded image is
    never written; the function is jitted so that this holds in eager mode.
    """
    return _jax_pad_and_slice(size, channels_last)(ops.stop_gradient(x), offsets)


@functools.cache
def _jax_pad_and_slice(size, channels_last):
    import jax
    from jax import lax

    ndim = len(size)

    def extract(x, offsets):
        spatial_axes = range(1, 1 + ndim) if channels_last else range(2, 2 + ndim)
        padding = [(0, 0)] * x.ndim
        for axis, s in zip(spatial_axes, size):
            padding[axis] = (s, s)
        padded = jax.numpy.pad(x, padding)
        corners = offsets + jax.numpy.asarray(size, dtype=offsets.dtype)
        channels = x.shape[-1] if channels_last else x.shape[1]
        zero = jax.numpy.zeros((), dtype=offsets.dtype)

        def one_patch(image, corner):
            if channels_last:
                return lax.dynamic_slice(image, (*corner, zero), (*size, channels))
            return lax.dynamic_slice(image, (zero, *corner), (channels, *size))

        per_image = jax.vmap(one_patch, in_axes=(None, 0))
        return jax.vmap(per_image)(padded, corners)

    return jax.jit(extract)


def _extract_torch(x, offsets, size, channels_last):
    """One slice copy per patch into a zero-filled output (eager PyTorch).

    A CPU tensor is copied through its numpy view (no copy of the image),
    where a slice copy costs a fraction of a torch indexing call.
    """
    import torch

    x = x.detach()
    channels = x.shape[-1] if channels_last else x.shape[1]
    corners = offsets.cpu().tolist()
    n_patches = len(corners[0]) if corners else 0
    patch_shape = (*size, channels) if channels_last else (channels, *size)
    out_shape = (x.shape[0], n_patches, *patch_shape)
    if x.device.type == "cpu" and x.dtype != torch.bfloat16:
        image = x.numpy()
        out = np.zeros(out_shape, dtype=image.dtype)
        _copy_patches(image, corners, size, channels_last, out)
        return torch.from_numpy(out)
    out = torch.zeros(out_shape, dtype=x.dtype, device=x.device)
    _copy_patches(x, corners, size, channels_last, out)
    return out


def _copy_patches(x, corners, size, channels_last, out):
    """Copy the in-bounds part of every patch of ``x`` into ``out``.

    Args:
        x: ``(B, *spatial, C)`` (or channels first) numpy array or tensor.
        corners: nested lists ``(B, N, ndim)`` of ints.
        size: tuple of ``ndim`` ints.
        channels_last: bool.
        out: zero-filled ``(B, N, *size, C)`` (or ``(B, N, C, *size)``)
            array of the same kind as ``x``, written in place.
    """
    spatial = x.shape[1:-1] if channels_last else x.shape[2:]
    channel = () if channels_last else (slice(None),)
    for b, image_corners in enumerate(corners):
        for i, corner in enumerate(image_corners):
            source, target = [], []
            for o, s, extent in zip(corner, size, spatial):
                lo, hi = max(o, 0), min(o + s, extent)
                if hi <= lo:
                    break  # entirely outside: the patch stays zeros
                source.append(slice(lo, hi))
                target.append(slice(lo - o, hi - o))
            else:
                out[(b, i, *channel, *target)] = x[(b, *channel, *source)]


_FAST_PATHS = {"jax": _extract_jax, "torch": _extract_torch}
