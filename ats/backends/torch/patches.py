"""``ats.ops.extract_patches`` on PyTorch: one slice copy per patch."""

import numpy as np
import torch

__all__ = ["extract_patches"]


def extract_patches(x, offsets, size, channels_last):
    """One slice copy per patch into a zero-filled output (eager PyTorch).

    A CPU tensor is copied through its numpy view (no copy of the image),
    where a slice copy costs a fraction of a torch indexing call.

    Args:
        x: ``(B, *spatial, C)`` (or ``(B, C, *spatial)``) tensor.
        offsets: ``(B, N, ndim)`` int32 top-left corners.
        size: tuple of ``ndim`` ints.
        channels_last: bool.

    Returns:
        ``(B, N, *size, C)`` (or ``(B, N, C, *size)``) tensor of ``x``'s
        dtype.
    """
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
