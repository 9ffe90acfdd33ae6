"""``ats.ops.extract_patches`` on JAX: one fused pad-and-slice per patch."""

import functools

import jax
from jax import lax

__all__ = ["extract_patches"]


def extract_patches(x, offsets, size, channels_last):
    """One ``dynamic_slice`` per patch from the zero-padded image.

    Under ``jit`` XLA fuses the pad into the slices, so the padded image is
    never written; the function is jitted so that this holds in eager mode.

    Args:
        x: ``(B, *spatial, C)`` (or ``(B, C, *spatial)``) array.
        offsets: ``(B, N, ndim)`` int32 top-left corners.
        size: tuple of ``ndim`` ints.
        channels_last: bool.

    Returns:
        ``(B, N, *size, C)`` (or ``(B, N, C, *size)``) array of ``x``'s dtype.
    """
    return _pad_and_slice(size, channels_last)(lax.stop_gradient(x), offsets)


@functools.cache
def _pad_and_slice(size, channels_last):
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
