"""Batches of host sources for ``fit``, ``evaluate`` and ``predict``."""

import math
import operator

import keras
import numpy as np

from ..data.sources import PatchSource, SourceError

__all__ = ["SourceSequence"]


class SourceSequence(keras.utils.PyDataset):
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
        seed: int, seed of the shuffling.
        data_format: defaults to ``keras.config.image_data_format()``.
        **kwargs: ``workers``, ``max_queue_size`` of ``PyDataset``
            (threads; ``use_multiprocessing`` is refused because the sources'
            open files cannot be shared with forked processes).

    Example:
        >>> sources = [TiffSource(p, low_level=7) for p in paths]
        >>> model.fit(SourceSequence(sources, labels, batch_size=8,
        ...                          patch_size=(50, 50), shuffle=True))
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
        super().__init__(**kwargs)
        self.sources = list(sources)
        if not self.sources:
            raise ValueError("SourceSequence: `sources` is empty")
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
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int)
            or batch_size < 1
        ):
            raise ValueError(
                "SourceSequence: `batch_size` must be a positive"
                f" int, got {batch_size!r}"
            )
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.data_format = data_format or keras.config.image_data_format()
        self.epoch = 0
        self._order = self._epoch_order()

    def _epoch_order(self):
        if not self.shuffle:
            return np.arange(len(self.sources))
        return np.random.default_rng([self.seed, self.epoch]).permutation(
            len(self.sources)
        )

    def __len__(self):
        return math.ceil(len(self.sources) / self.batch_size)

    def __getitem__(self, index):
        index = operator.index(index)
        if not 0 <= index < len(self):
            raise IndexError(
                f"batch index {index} out of range for {len(self)} batches"
            )
        batch = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        x_low = np.stack([self.sources[i].low() for i in batch])
        if self.data_format == "channels_first":
            x_low = np.moveaxis(x_low, -1, 1)
        x_high_ref = np.stack([self.sources[i].reference() for i in batch])
        if self.y is None:
            return ((x_low, x_high_ref),)
        return (x_low, x_high_ref), self.y[batch]

    def on_epoch_end(self):
        """Advance the epoch and, when shuffling, draw the next order."""
        self.epoch += 1
        self._order = self._epoch_order()
