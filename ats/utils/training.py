"""Batches from a sequence of single data points: the original library's
``ats.utils.training`` (``Batcher``, ``DataTransform``, ``LambdaTransform``,
``compose_sequences``), on Keras 3's ``keras.utils.PyDataset``.

The original scripts wrap a per-example ``Sequence`` (``dataset[i]`` is one
``(x, y)``) in a ``Batcher`` and pass that to ``fit``. The same code runs
here; the differences are in the shuffling (seeded, see ``Batcher``) and in
the ``PyDataset`` keyword arguments (``workers``, ``use_multiprocessing``,
``max_queue_size``) that every class accepts.

Example:
    >>> import numpy as np
    >>> from ats.utils.training import Batcher, LambdaTransform, compose_sequences
    >>> points = [((np.full(2, i), np.full(3, i)), i % 2) for i in range(5)]
    >>> batches = compose_sequences(points, [
    ...     (Batcher, 2, False),
    ...     (LambdaTransform, lambda x: [xi * 10 for xi in x])])
    >>> len(batches)
    3
    >>> (x_low, x_high), y = batches[2]
    >>> x_low.tolist(), x_high.shape, y.tolist()
    ([[40, 40]], (1, 3), [0])
"""

import keras
import numpy as np

from .. import checks
from ..data.ordering import ShuffledSequence

__all__ = ["Batcher", "DataTransform", "LambdaTransform", "compose_sequences"]


def _sequence_length(sequence, where):
    if not hasattr(sequence, "__len__") or not hasattr(sequence, "__getitem__"):
        checks.fail(
            "sequence",
            "a sequence (with __len__ and __getitem__)",
            sequence,
            where,
            TypeError,
        )
    return len(sequence)


def _stack(items):
    """Stack a list of arrays, or of lists/tuples of arrays element-wise (into
    a tuple: Keras 3 on TensorFlow refuses a list in a ``PyDataset`` batch)."""
    if isinstance(items[0], (list, tuple)):
        return tuple(
            np.stack([item[k] for item in items]) for k in range(len(items[0]))
        )
    if isinstance(items[0], dict):
        return {key: np.stack([item[key] for item in items]) for key in items[0]}
    return np.stack(items)


class Batcher(ShuffledSequence):
    """Batches of ``batch_size`` data points of ``sequence``.

    ``sequence[i]`` is one data point ``(x, y)``, where ``x`` is an array or
    a list/tuple of arrays (``[x_low, x_high]``); a batch stacks them into
    ``(x, y)`` with a leading batch axis (the last batch may be smaller);
    a list ``x`` becomes a tuple of arrays, which Keras 3 takes on every
    backend (the original gave a list).
    After every epoch the order is shuffled and ``sequence.on_epoch_end()``
    is called if it has one.

    Unlike the original, the order comes from ``seed`` (the same in every
    run; ``ats.data.ShuffledSequence``), not from numpy's global random
    state, and the first epoch is shuffled too (the original's first epoch
    was in order); ``shuffle=False`` keeps the order ``0, 1, ...``.

    Args:
        sequence: a sequence of ``(x, y)`` data points (a
            ``keras.utils.PyDataset`` / ``Sequence`` of single points, a
            list, ...).
        batch_size: int >= 1, data points per batch. Defaults to 16, as in
            the original.
        shuffle: bool, visit the points in a new order every epoch.
        seed: int >= 0, the seed of the order.
        **kwargs: ``keras.utils.PyDataset`` arguments (``workers``, ...).
    """

    def __init__(self, sequence, batch_size=16, shuffle=True, seed=0, **kwargs):
        n_items = _sequence_length(sequence, "Batcher")
        if n_items == 0:
            raise ValueError("Batcher: `sequence` must not be empty, got length 0")
        super().__init__(n_items, batch_size, shuffle, seed, **kwargs)
        self.sequence = sequence

    def __getitem__(self, index):
        points = [self.sequence[int(i)] for i in self.batch_indices(index)]
        return _stack([x for x, _ in points]), _stack([y for _, y in points])

    def on_epoch_end(self):
        super().on_epoch_end()
        if hasattr(self.sequence, "on_epoch_end"):
            self.sequence.on_epoch_end()


class DataTransform(keras.utils.PyDataset):
    """A sequence of ``(transform(x), y)`` for the ``(x, y)`` of
    ``sequence``; subclasses implement ``_transform(x)``.

    Args:
        sequence: a sequence of ``(x, y)`` batches (e.g. a ``Batcher``).
        **kwargs: ``keras.utils.PyDataset`` arguments.
    """

    def __init__(self, sequence, **kwargs):
        super().__init__(**kwargs)
        _sequence_length(sequence, type(self).__name__)
        self.sequence = sequence

    def __len__(self):
        return len(self.sequence)

    def __getitem__(self, index):
        x, y = self.sequence[index]
        return self._transform(x), y

    def _transform(self, x):
        raise NotImplementedError(
            f"{type(self).__name__}: a DataTransform subclass implements "
            "_transform(x), or use LambdaTransform(sequence, function)"
        )

    def on_epoch_end(self):
        if hasattr(self.sequence, "on_epoch_end"):
            self.sequence.on_epoch_end()


class LambdaTransform(DataTransform):
    """``(transform_function(x), y)`` for the ``(x, y)`` of ``sequence``.

    Args:
        sequence: a sequence of ``(x, y)`` batches.
        transform_function: callable on ``x``.
        **kwargs: ``keras.utils.PyDataset`` arguments.
    """

    def __init__(self, sequence, transform_function, **kwargs):
        super().__init__(sequence, **kwargs)
        if not callable(transform_function):
            checks.fail(
                "transform_function",
                "a callable",
                transform_function,
                "LambdaTransform",
                TypeError,
            )
        self.transform_function = transform_function

    def _transform(self, x):
        return self.transform_function(x)


def compose_sequences(sequence, sequences):
    """Wrap ``sequence`` in each of ``sequences`` in turn.

    Args:
        sequence: the innermost sequence.
        sequences: list of tuples ``(cls, *args)``; each step is
            ``sequence = cls(sequence, *args)``.

    Returns:
        The outermost sequence.
    """
    for step in sequences:
        if not isinstance(step, (list, tuple)) or not step or not callable(step[0]):
            checks.fail(
                "sequences",
                "a list of tuples (cls, *args)",
                step,
                "compose_sequences",
                TypeError,
            )
        sequence = step[0](sequence, *step[1:])
    return sequence
