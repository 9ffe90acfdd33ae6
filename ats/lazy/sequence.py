"""Batches of host sources for ``fit``, ``evaluate`` and ``predict``."""

import keras
import numpy as np

from ..data.ordering import ShuffledSequence
from ..data.sources import PatchSource, SourceError

__all__ = ["SourceSequence"]


class SourceSequence(ShuffledSequence):
    """Feed ``PatchSource`` s to a ``lazy_attention_sampling`` model.

    Each batch is ``((x_low, x_high_ref), y)`` (``((x_low, x_high_ref),)``
    without targets): ``x_low`` ``(B, *L, C)`` (or ``(B, C, *L)``) stacks
    the sources' low-resolution views in their dtype and ``x_high_ref``
    ``(B, 1 + ndim)`` int32 their ``reference()`` rows. No patch is read
    here: the model samples positions and reads patches inside its step, so
    prefetching batches (``workers``, the backends' own prefetch) never
    makes positions stale.

    Everything that can be checked up front is checked at construction:
    every source's low view has the same shape and dtype, and
    ``patch_size`` (if given) fits in every image.

    Args:
        sources: sequence of ``PatchSource``.
        y: optional targets, one per source (array-like of length
            ``len(sources)``).
        batch_size: int, sources per batch; the last batch may be smaller.
        patch_size: optional tuple, the model's patch size, checked against
            every source.
        shuffle: bool, visit the sources in a new random order every epoch
            (drawn from ``seed`` and the epoch number).
        seed: int >= 0, seed of the shuffling.
        data_format: defaults to ``keras.config.image_data_format()``.
        **kwargs: ``workers``, ``max_queue_size`` of ``PyDataset``
            (threads; ``use_multiprocessing`` is refused because the sources'
            open files cannot be shared with forked processes).

    Example:
        >>> import numpy as np
        >>> from ats.data import ArraySource
        >>> from ats.lazy import SourceSequence
        >>> sources = [
        ...     ArraySource(np.zeros((64, 64, 1)), low=np.zeros((8, 8, 1)))
        ...     for _ in range(5)
        ... ]
        >>> batches = SourceSequence(sources, [0, 1, 0, 1, 1], batch_size=2,
        ...                          patch_size=(16, 16), shuffle=True)
        >>> (x_low, x_high_ref), y = batches[0]
        >>> x_low.shape, x_high_ref.shape, y.shape
        ((2, 8, 8, 1), (2, 3), (2,))
    """

    def __init__(
        self,
        sources,
        y=None,
        batch_size=32,
        patch_size=None,
        shuffle=False,
        seed=0,
        data_format=None,
        **kwargs,
    ):
        if kwargs.get("use_multiprocessing"):
            raise ValueError(
                "SourceSequence: `use_multiprocessing=True` is not supported "
                "(open files cannot be shared with forked workers); use "
                "threads (`workers`)"
            )
        self.sources = list(sources)
        if not self.sources:
            raise ValueError("SourceSequence: `sources` is empty")
        super().__init__(
            len(self.sources),
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            **kwargs,
        )
        for i, source in enumerate(self.sources):
            if not isinstance(source, PatchSource):
                raise TypeError(
                    f"SourceSequence: sources[{i}] must be a PatchSource, got "
                    f"{type(source).__name__}"
                )
        first = self.sources[0]
        for source in self.sources[1:]:
            if (source.low_shape, source.dtype) != (first.low_shape, first.dtype):
                raise SourceError(
                    f"{source.name}: its low view has shape "
                    f"{source.low_shape} and dtype {source.dtype}, but "
                    f"{first.name}'s has {first.low_shape} and "
                    f"{first.dtype}; a batch stacks low views, so they must "
                    "agree"
                )
        if patch_size is not None:
            for source in self.sources:
                source.check_patch_size(patch_size)
        self.y = None if y is None else np.asarray(y)
        if self.y is not None and len(self.y) != len(self.sources):
            raise ValueError(
                f"SourceSequence: `y` has {len(self.y)} entries for "
                f"{len(self.sources)} sources"
            )
        self.data_format = data_format or keras.config.image_data_format()

    def __getitem__(self, index):
        batch = self.batch_indices(index)
        x_low = np.stack([self.sources[i].low() for i in batch])
        if self.data_format == "channels_first":
            x_low = np.moveaxis(x_low, -1, 1)
        x_high_ref = np.stack([self.sources[i].reference() for i in batch])
        if self.y is None:
            return ((x_low, x_high_ref),)
        return (x_low, x_high_ref), self.y[batch]
