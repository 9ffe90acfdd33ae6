"""Batches of a split for ``model.fit`` / ``evaluate``, rendered as they are read."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ... import checks
from ...data.ordering import ShuffledSequence
from .arrays import BATCH_BUFFERS
from .config import VIEWS, check_views
from .split import MegapixelMNISTSplit

__all__ = ["MegapixelMNISTSequence"]


class MegapixelMNISTSequence(ShuffledSequence):
    """Batches of a Megapixel MNIST split for ``model.fit`` / ``evaluate``.

    Each batch is ``([x_low, x_high], y)`` with ``x_low`` (B, h, w, 1) and
    ``x_high`` (B, height, width, 1) float32 in [0, 1] and ``y`` (B,) int32
    class indices; with a single view (e.g. ``views=("low",)`` for a
    low-resolution baseline) it is ``(x, y)``. The last batch may be smaller.
    The order of the images is :class:`ats.data.ordering.ShuffledSequence`'s.
    The views' arrays are 64-byte aligned, so that JAX on a CPU uses them
    in place instead of copying them, and their memory is reused once
    nothing holds a batch any more (:mod:`.arrays`).

    Args:
        split: A :class:`MegapixelMNISTSplit` with at least one image.
        batch_size: Images per batch (>= 1).
        shuffle: Visit the images in a random order, drawn anew for every
            epoch from ``seed`` and the epoch number (so runs repeat).
        seed: Seed of the shuffling (>= 0).
        views: Views to yield, in order, from "low" and "high".
        cache: Keep every rendered image in memory and reuse it in later
            epochs instead of rendering it again (``4 * (h * w + height *
            width)`` bytes per image with both views). For small data sets.
        **kwargs: Passed to ``keras.utils.PyDataset`` (``workers``,
            ``use_multiprocessing``, ``max_queue_size``).

    Example:
        >>> from ats.datasets.megapixel_mnist import (
        ...     MegapixelMNIST, MegapixelMNISTConfig, MegapixelMNISTSequence)
        >>> config = MegapixelMNISTConfig(
        ...     width=100, height=100, scale=0.5, n_train=5, n_test=1)
        >>> train = MegapixelMNIST.generate(config, progress=False).split("train")
        >>> batches = MegapixelMNISTSequence(train, batch_size=2, shuffle=True)
        >>> (x_low, x_high), y = batches[0]
        >>> len(batches), x_low.shape, x_high.shape, y.shape
        (3, (2, 50, 50, 1), (2, 100, 100, 1), (2,))
    """

    def __init__(
        self,
        split: MegapixelMNISTSplit,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int = 0,
        views: Sequence[str] = VIEWS,
        cache: bool = False,
        **kwargs,
    ):
        where = type(self).__name__
        if not isinstance(split, MegapixelMNISTSplit):
            checks.fail("split", "a MegapixelMNISTSplit", split, where, TypeError)
        super().__init__(len(split), batch_size, shuffle, seed, **kwargs)
        self.split = split
        self.views = check_views(views)
        self._cache = {} if checks.boolean("cache", cache, where=where) else None

    def __getitem__(self, index: int):
        batch = self.batch_indices(index)
        if self._cache is None:
            xs, y = self.split.render_batch(batch, self.views)
        else:
            xs, y = self._render_cached(batch)
        # A tuple, not a list: tf.data (TensorFlow backend) needs one.
        return (tuple(xs) if len(xs) > 1 else xs[0]), y

    def _render_cached(self, indices):
        """``render_batch`` through the cache of rendered images."""
        missing = [i for i in indices if i not in self._cache]
        if missing:
            # Kept for the whole run: new memory, not the pool's.
            xs, _ = self.split.render_batch(missing, self.views, pool=None)
            for k, i in enumerate(missing):
                self._cache[i] = [x[k] for x in xs]
        xs = []
        for v in range(len(self.views)):
            images = [self._cache[i][v] for i in indices]
            shape = (len(images),) + images[0].shape
            xs.append(np.stack(images, out=BATCH_BUFFERS.empty(shape, np.float32)))
        return xs, self.split.labels[indices].astype(np.int32)
