"""Data and batches that split evenly across processes and devices."""

import keras
import numpy as np

from .. import checks
from ..backends import implementation

__all__ = [
    "EvenBatches",
    "batch_multiple",
    "drop_remainder",
    "even_batches",
    "leading_length",
    "predict",
    "shard_examples",
    "shard_slice",
]


def batch_multiple():
    """The number every per-process batch size must be a multiple of.

    Returns:
        int: on JAX under a ``keras.distribution`` the number of this
        process's devices the batch axis is split across; in a
        ``tf.distribute`` strategy's scope its number of replicas (a batch
        smaller than that leaves a replica without examples); otherwise 1
        (under PyTorch DDP each process feeds its own batches).
    """
    engine_multiple = implementation("distribution", "batch_multiple")
    return 1 if engine_multiple is None else engine_multiple()


def leading_length(data, name, caller):
    """The number of examples of ``data``, the same in every array.

    Args:
        data: array or nested structure of arrays, examples first.
        name: str, the argument's name, for errors.
        caller: str, the function's name, for errors.

    Returns:
        int.
    """
    leaves = keras.tree.flatten(data)
    if not leaves:
        raise ValueError(f"{caller}: `{name}` holds no arrays")
    lengths = {int(np.shape(leaf)[0]) for leaf in leaves}
    if len(lengths) != 1:
        raise ValueError(
            f"{caller}: the arrays of `{name}` must have the same number of "
            f"examples (first axis), got {sorted(lengths)}"
        )
    return lengths.pop()


def shard_slice(n, index, count):
    """Block ``index`` of ``count`` equal blocks of ``range(n)``, as a slice.

    Args:
        n: int, the number of examples.
        index: int, the block (a process index).
        count: int, the number of blocks (of processes); the last ``n %
            count`` examples belong to none.

    Returns:
        ``slice(index * (n // count), (index + 1) * (n // count))``.
    """
    size = n // count
    if size == 0:
        raise ValueError(f"shard: {n} examples are fewer than the processes ({count})")
    return slice(index * size, (index + 1) * size)


def shard_examples(data, index, count):
    """Block ``index`` of ``count`` equal blocks of the examples of ``data``.

    Args:
        data: array or nested structure (tuple, list, dict) of arrays with
            the examples on their first axis.
        index: int, the block to return (a process index).
        count: int, the number of blocks (of processes); the last ``n %
            count`` examples belong to none.

    Returns:
        The same structure with ``n // count`` examples.
    """
    if count == 1:
        return data
    rows = shard_slice(leading_length(data, "data", "shard"), index, count)
    return keras.tree.map_structure(lambda a: a[rows], data)


def drop_remainder(data, multiple=None):
    """Drop the last examples so that their number is a multiple.

    With a batch size that is a multiple of ``multiple`` every batch of
    ``fit`` then splits evenly across the devices, the last partial one
    included; fewer than ``multiple`` examples are dropped (always the last
    ones: shuffle the arrays once beforehand if their order is not random).

    Args:
        data: array or nested structure (tuple, list, dict) of arrays with
            the examples on their first axis.
        multiple: int, defaults to ``batch_multiple()``.

    Returns:
        The same structure with ``n - n % multiple`` examples.
    """
    multiple = batch_multiple() if multiple is None else multiple
    multiple = checks.integer("multiple", multiple, minimum=1, where="drop_remainder")
    n = leading_length(data, "data", "drop_remainder")
    kept = n - n % multiple
    if kept == 0:
        raise ValueError(
            f"drop_remainder: `data` has {n} examples, fewer than the "
            f"{multiple} devices a batch is split across"
        )
    return keras.tree.map_structure(lambda a: a[:kept], data)


class EvenBatches(keras.utils.PyDataset):
    """A ``PyDataset`` whose batches split evenly across the devices.

    Wraps a ``keras.utils.PyDataset`` of batches ``(x, y)`` or ``(x, y,
    sample_weight)`` (any structure of arrays, examples first) and makes the
    size of each batch a multiple of ``multiple``:

    - ``remainder="drop"`` (training): drop the last ``size % multiple``
      examples of each batch, and the last batch altogether if it has fewer
      than ``multiple`` (checked by loading it once here).
    - ``remainder="pad"`` (evaluation): repeat the last example of each
      batch up to a multiple, with sample weight 0, so metrics and the sum of
      the compiled loss ignore the copies (Keras' ``"sum_over_batch_size"``
      loss still divides by the padded size: a padded batch's loss reads
      smaller by ``size / padded size``).

    ``workers``, ``use_multiprocessing``, ``max_queue_size`` and the epoch
    hooks are those of ``dataset``.

    Args:
        dataset: a ``keras.utils.PyDataset``.
        multiple: int, defaults to ``batch_multiple()`` (so make it in the
            ``Setup.scope()``).
        remainder: ``"drop"`` or ``"pad"``.
    """

    def __init__(self, dataset, multiple=None, remainder="drop"):
        if not isinstance(dataset, keras.utils.PyDataset):
            raise TypeError(
                "EvenBatches: `dataset` must be a keras.utils.PyDataset, got "
                f"{type(dataset).__name__}"
            )
        multiple = batch_multiple() if multiple is None else multiple
        multiple = checks.integer("multiple", multiple, minimum=1, where="EvenBatches")
        checks.choice("remainder", remainder, ("drop", "pad"), where="EvenBatches")
        super().__init__(
            workers=dataset.workers,
            use_multiprocessing=dataset.use_multiprocessing,
            max_queue_size=dataset.max_queue_size,
        )
        self.dataset, self.multiple, self.remainder = dataset, multiple, remainder
        self._length = len(dataset)
        if (
            remainder == "drop"
            and self._length
            and leading_length(dataset[self._length - 1], "dataset", "EvenBatches")
            < multiple
        ):
            self._length -= 1

    def __len__(self):
        return self._length

    def __getitem__(self, index):
        if not 0 <= index < self._length:
            raise IndexError(
                f"EvenBatches: batch index {index} out of range "
                f"for {self._length} batches"
            )
        batch = self.dataset[index]
        if not isinstance(batch, tuple) or not 2 <= len(batch) <= 3:
            raise ValueError(
                "EvenBatches: batches must be (x, y) or (x, y, "
                f"sample_weight), got a {type(batch).__name__} of "
                f"{len(batch) if isinstance(batch, tuple) else 1}"
            )
        size = leading_length(batch, "dataset", "EvenBatches")
        if self.remainder == "drop":
            kept = size - size % self.multiple
            return keras.tree.map_structure(lambda a: a[:kept], batch)
        padding = -size % self.multiple
        weights = np.concatenate(
            [
                np.asarray(batch[2], "float32")
                if len(batch) == 3
                else np.ones(size, "float32"),
                np.zeros(padding, "float32"),
            ]
        )
        x, y = _pad_with_last(batch[:2], padding)
        return x, y, weights

    def on_epoch_begin(self):
        self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


def even_batches(dataset, training=True):
    """``dataset`` with batches that split evenly across the devices.

    Args:
        dataset: a ``keras.utils.PyDataset`` of ``(x, y)`` batches.
        training: bool; True drops the remainder of each batch, False pads
            it with weight-0 copies (see ``EvenBatches``).

    Returns:
        ``dataset`` itself when ``batch_multiple()`` is 1, else an
        ``EvenBatches`` over it.
    """
    multiple = batch_multiple()
    if multiple == 1:
        return dataset
    return EvenBatches(dataset, multiple, "drop" if training else "pad")


def predict(model, x, batch_size=32, **kwargs):
    """``model.predict`` on any number of examples under any engine.

    The examples are padded with copies of the last one up to a multiple of
    ``batch_multiple()`` (so that every device gets examples, as JAX
    requires), and the padding is removed from the predictions.

    Args:
        model: a ``keras.Model`` (e.g. ``setup.wrap(model)``).
        x: array or nested structure of arrays, the inputs.
        batch_size: int, a multiple of ``batch_multiple()``.
        **kwargs: passed to ``model.predict`` (e.g. ``verbose``).

    Returns:
        The predictions for the ``len(x)`` examples, as ``model.predict``
        returns them.
    """
    multiple = batch_multiple()
    batch_size = checks.integer("batch_size", batch_size, minimum=1, where="predict")
    if batch_size % multiple:
        checks.fail(
            "batch_size",
            f"a multiple of the number of devices a batch is split across ({multiple})",
            batch_size,
            "predict",
        )
    n = leading_length(x, "x", "predict")
    padding = -n % multiple
    if padding:
        x = _pad_with_last(x, padding)
    predictions = model.predict(x, batch_size=batch_size, **kwargs)
    return keras.tree.map_structure(lambda p: p[:n], predictions)


def _pad_with_last(data, padding):
    """``data`` with ``padding`` copies of its last example appended.

    Args:
        data: array or nested structure of arrays, examples first.
        padding: int, the number of copies.

    Returns:
        The same structure of numpy arrays.
    """

    def pad(a):
        a = np.asarray(a)
        return np.concatenate([a, np.repeat(a[-1:], padding, axis=0)])

    return keras.tree.map_structure(pad, data)
