"""The interface every multi-resolution source of patches implements."""


class MultiResolutionBatch:
    """A batch of data points available at several resolutions (levels).

    Level 0 is the lowest resolution; each higher level shows the same data
    points at a higher resolution. Attention is computed on one level and
    patches are read from another, so a source only has to produce the
    patches that were sampled, never a whole high-resolution level.

    Subclasses implement ``data`` and ``patches``; ``FromTensors`` does so
    for tensors in memory.
    """

    def data(self, level):
        """The whole batch at ``level``: ``(B, *spatial, C)``."""
        raise NotImplementedError

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
        """Patches of ``tolevel`` centred on positions sampled at ``fromlevel``.

        The sample space (an attention map of shape ``sample_space``) covers
        ``previous_patch_size`` pixels of ``fromlevel`` starting at
        ``offsets``; see ``ats.ops.patch_offsets`` for the exact mapping.

        Args:
            samples: ``(B, N, ndim)`` int positions in the sample space.
            offsets: scalar, ``(ndim,)`` or ``(B, N, ndim)`` start of the
                region covered by the sample space, in ``fromlevel`` pixels.
            sample_space: ``(ndim,)`` shape of the sample space.
            previous_patch_size: ``(ndim,)`` extent of that region.
            patch_size: ``(ndim,)`` size of the patches to read.
            fromlevel: int, the level the samples refer to.
            tolevel: int, the level to read the patches from.

        Returns:
            ``(patches, offsets)``: ``(B, N, *patch_size, C)`` patches and
            their ``(B, N, ndim)`` int32 top-left corners in ``tolevel``.
        """
        raise NotImplementedError
