"""Map positions in an attention map to patch corners in a higher resolution."""

from keras import ops


def patch_offsets(
    samples, sample_space, previous_patch_size, patch_size, scale, offsets=0.0
):
    """Top-left corners of patches centred on sampled attention cells.

    The attention map of shape ``sample_space`` covers a region of
    ``previous_patch_size`` pixels of the source level that starts at
    ``offsets``. Cell ``s`` is centred at ``offsets + (s + 0.5) * step`` with
    ``step = previous_patch_size / sample_space``; that centre is multiplied by
    ``scale`` (target size over source size) and the patch's corner is the
    centre minus ``patch_size / 2``, rounded half to even.

    For ``SamplePatches`` with receptive field ``r``, low-resolution shape
    ``L`` and high-resolution shape ``H``: ``offsets = r / 2``,
    ``previous_patch_size = L - r`` and ``scale = H / L``.

    Args:
        samples: ``(B, N, ndim)`` integer cells of the attention map.
        sample_space: ``(ndim,)`` shape of the attention map.
        previous_patch_size: ``(ndim,)`` extent covered by the attention map,
            in pixels of the source level.
        patch_size: ``(ndim,)`` size of the patches in the target level.
        scale: ``(ndim,)`` ratio of the target level's shape to the source's.
        offsets: scalar, ``(ndim,)`` or ``(B, N, ndim)`` start of the covered
            region in pixels of the source level.

    Returns:
        ``(B, N, ndim)`` int32 top-left corners in the target level.

    Example:
        Cell ``(0, 0)`` is centred at 5 low-resolution pixels, 20
        high-resolution ones: the corner is 16.

        >>> from keras import ops
        >>> from ats.ops import patch_offsets
        >>> corners = patch_offsets(
        ...     [[[0, 0]]], (10, 10), (100, 100), (8, 8), (4.0, 4.0)
        ... )
        >>> ops.convert_to_numpy(corners).tolist()
        [[[16, 16]]]
    """
    f32 = "float32"
    samples = ops.cast(samples, f32)
    step = ops.cast(previous_patch_size, f32) / ops.cast(sample_space, f32)
    centre = ops.cast(offsets, f32) + (samples + 0.5) * step
    corner = centre * ops.cast(scale, f32) - ops.cast(patch_size, f32) / 2
    return ops.cast(ops.round(corner), "int32")
