"""The order in which a ``PyDataset`` visits its items, epoch after epoch."""

import math
import operator

import keras
import numpy as np

from .. import checks

__all__ = ["ShuffledSequence"]


class ShuffledSequence(keras.utils.PyDataset):
    """A ``PyDataset`` over ``n_items`` items, in batches, optionally shuffled.

    This class owns the order only: which items batch ``index`` holds in the
    current epoch. Subclasses implement ``__getitem__`` by reading the items
    ``self.batch_indices(index)`` names. Without shuffling the order is
    ``0, 1, ..., n_items - 1``; with shuffling it is a permutation drawn
    from ``(seed, epoch)``, so that the same seed gives the same sequence of
    epochs in every run (and a resumed run that sets ``epoch`` sees the
    order the uninterrupted one saw). Keras calls ``on_epoch_end`` after
    every epoch, which advances ``epoch`` and draws the next order.

    Args:
        n_items: int >= 1, the number of items (images, sources, ...).
        batch_size: int >= 1, items per batch; the last batch may be
            smaller.
        shuffle: bool, visit the items in a new random order every epoch.
        seed: int >= 0, seed of the shuffling.
        **kwargs: passed to ``keras.utils.PyDataset`` (``workers``,
            ``use_multiprocessing``, ``max_queue_size``).

    Example:
        >>> import numpy as np
        >>> from ats.data import ShuffledSequence
        >>> class Squares(ShuffledSequence):
        ...     def __init__(self, values, **kwargs):
        ...         super().__init__(len(values), **kwargs)
        ...         self.values = np.asarray(values)
        ...     def __getitem__(self, index):
        ...         batch = self.values[self.batch_indices(index)]
        ...         return batch, batch**2
        >>> batches = Squares([1, 2, 3, 4, 5], batch_size=2)
        >>> len(batches)
        3
        >>> batches[2]
        (array([5]), array([25]))
        >>> shuffled = Squares([1, 2, 3, 4, 5], batch_size=5, shuffle=True)
        >>> sorted(shuffled[0][0].tolist())
        [1, 2, 3, 4, 5]
    """

    def __init__(self, n_items, batch_size=32, shuffle=False, seed=0, **kwargs):
        super().__init__(**kwargs)
        where = type(self).__name__
        self.n_items = checks.integer("n_items", n_items, minimum=1, where=where)
        self.batch_size = checks.integer(
            "batch_size", batch_size, minimum=1, where=where
        )
        self.shuffle = checks.boolean("shuffle", shuffle, where=where)
        self.seed = checks.integer("seed", seed, minimum=0, where=where)
        self.epoch = 0

    @property
    def epoch(self):
        """int, the current epoch (0 first); setting it draws its order."""
        return self._epoch

    @epoch.setter
    def epoch(self, value):
        self._epoch = checks.integer("epoch", value, minimum=0)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self._epoch])
            self._order = rng.permutation(self.n_items)
        else:
            self._order = np.arange(self.n_items)

    @property
    def order(self):
        """``(n_items,)`` int, the items in the order of the current epoch."""
        return self._order

    def __len__(self):
        return math.ceil(self.n_items / self.batch_size)

    def batch_indices(self, index):
        """The items of batch ``index`` in the current epoch.

        Args:
            index: int in ``[0, len(self))``.

        Returns:
            ``(batch,)`` int array of item indices (``batch_size`` of them,
            fewer in the last batch).

        Raises:
            IndexError: ``index`` is outside ``[0, len(self))``.
        """
        index = operator.index(index)
        if not 0 <= index < len(self):
            raise IndexError(
                f"batch index {index} out of range for {len(self)} batches"
            )
        return self._order[index * self.batch_size : (index + 1) * self.batch_size]

    def on_epoch_end(self):
        """Advance ``epoch`` and, when shuffling, draw the next order."""
        self.epoch += 1
