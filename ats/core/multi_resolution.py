"""The interface every multi-resolution source of patches implements."""

from keras import ops

from ..ops import patch_offsets


class MultiResolutionBatch:
    """A batch of data points available at several resolutions (levels).

    Level 0 is the lowest resolution; each higher level shows the same data
    points at a higher resolution. Attention is computed on one level and
    patches are read from another, so a source only has to produce the
    patches that were sampled, never a whole high-resolution level.

    Subclasses implement ``data``, ``spatial_shape`` and ``read``;
    ``corners`` and ``patches`` follow from them. ``ats.core.FromTensors``
    implements them for tensors in memory, ``ats.lazy.FromSources`` for
    host sources.
    """

    def data(self, level):
        """The whole batch at ``level``: ``(B, *spatial, C)``."""
        raise NotImplementedError

    def spatial_shape(self, level):
        """The spatial shape of ``level``.

        Returns:
            A tuple of ``ndim`` ints or an ``(ndim,)`` int tensor (one shape
            for the batch), or a ``(B, ndim)`` int tensor (one per data
            point).
        """
        raise NotImplementedError

    def read(self, corners, patch_size, level):
        """The patches of ``level`` whose top-left corners are ``corners``.

        Pixels of a patch outside the level are zeros.

        Args:
            corners: ``(B, N, ndim)`` int32 corners in ``level`` pixels.
            patch_size: tuple of ``ndim`` ints.
            level: int.

        Returns:
            ``(B, N, *patch_size, C)`` (or ``(B, N, C, *patch_size)``)
            patches.
        """
        raise NotImplementedError

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
        """Top-left corners in ``tolevel`` of patches centred on positions
        sampled at ``fromlevel``.

        The sample space (an attention map of shape ``sample_space``) covers
        ``previous_patch_size`` pixels of ``fromlevel`` starting at
        ``offsets``; ``ats.ops.patch_offsets`` maps its cells to corners,
        with the ratio of the two levels' spatial shapes as its scale.

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
            ``(B, N, ndim)`` int32 corners.
        """
        shape_from = ops.cast(self.spatial_shape(fromlevel), "float32")
        shape_to = ops.cast(self.spatial_shape(tolevel), "float32")
        if len(shape_to.shape) == 2:  # one shape per data point
            shape_to = shape_to[:, None, :]
        scale = shape_to / shape_from
        return patch_offsets(
            samples, sample_space, previous_patch_size, patch_size, scale, offsets
        )

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

        The arguments are those of ``corners``.

        Returns:
            ``(patches, corners)``: ``(B, N, *patch_size, C)`` patches (see
            ``read``) and their ``(B, N, ndim)`` int32 top-left corners in
            ``tolevel``.
        """
        region = (offsets, sample_space, previous_patch_size)
        corners = self.corners(samples, *region, patch_size, fromlevel, tolevel)
        return self.read(corners, patch_size, tolevel), corners
