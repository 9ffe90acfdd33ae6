"""Batch arrays that a backend takes without a copy, in memory that is reused.

Two costs of a batch of the paper's 1500x1500 images (9 MB per image) on the
host were larger than rendering it (``benchmarks/paper_step.py``):

* **The copy to the device.** On a CPU, JAX wraps a numpy array whose data
  is 64-byte aligned as a device array without copying it
  (``jax.device_put``, and ``jit`` called on numpy inputs, which is how
  Keras's JAX trainer feeds a batch); any other array it copies, and numpy
  aligns its arrays to 16 bytes only. Batch arrays are aligned
  (:data:`ALIGNMENT`). PyTorch's ``as_tensor`` shares any numpy array;
  TensorFlow copies every one.
* **Fresh memory.** A new batch array is memory the system maps anew, and
  its first touch costs a page fault per page; in a virtual machine that
  hands freed pages back to its host, filling a batch of fresh memory cost
  several times as much as drawing it. Batch arrays are views of buffers
  that :class:`BufferPool` reuses once nothing holds a view of them any more.

Example:
    >>> from ats.datasets.megapixel_mnist.arrays import BufferPool
    >>> pool = BufferPool()
    >>> x = pool.zeros((2, 3, 3, 1))
    >>> x.shape, x.dtype.name, x.ctypes.data % 64, float(x.sum())
    ((2, 3, 3, 1), 'float32', 0, 0.0)
"""

from __future__ import annotations

import sys
import threading

import numpy as np

__all__ = ["ALIGNMENT", "BATCH_BUFFERS", "BufferPool"]

ALIGNMENT = 64
"""Bytes the data of a batch array is aligned to: the alignment JAX's CPU
client needs to use a host array in place (XLA's minimum buffer alignment)."""


def _reference_counts(buffers):
    """The reference counts of ``buffers``' items, each held by the list."""
    return [sys.getrefcount(buffer) for buffer in buffers]


class BufferPool:
    """Aligned arrays in buffers that are reused once nothing holds them.

    An array the pool returns is a view of one of its buffers (a uint8
    array). Every numpy view of a buffer, however derived (a slice, a
    reshape), holds a reference to it, as do the JAX and PyTorch arrays
    that share its memory. A buffer whose only reference is the pool's is
    idle, and the next request that fits in it reuses it: the smallest idle
    buffer that fits, if it is at most twice the request (so that a small
    request does not take a large buffer that the next large one would
    miss). So an array stays valid as long as anything holds it, and its
    memory is reused only afterwards. (Code that keeps the raw address of an
    array without a reference to it would see it reused, as it would see it
    freed.)

    The pool keeps at most ``max_buffers`` buffers: when it is full, a new
    buffer replaces an idle one, or, if every buffer is in use, is not kept.
    So it keeps the memory of the most batches that were in use at once (a
    batch of 128 of the paper's images takes 1.2 GB), until :meth:`clear`.
    Safe to use from several threads (a ``PyDataset``'s workers).

    Args:
        max_buffers: int >= 0, the buffers kept (0: none, every array is
            new memory).
        alignment: int, a power of two: the address of every array's data
            is a multiple of it.

    Example:
        >>> import numpy as np
        >>> from ats.datasets.megapixel_mnist.arrays import BufferPool
        >>> pool = BufferPool()
        >>> x = pool.empty((4, 5), np.int32)
        >>> address = x.ctypes.data
        >>> x[:] = 7
        >>> y = pool.zeros((4, 5), np.int32)  # x is in use: other memory
        >>> y.ctypes.data == address
        False
        >>> del x
        >>> z = pool.zeros((4, 5), np.int32)  # x's memory, zeroed
        >>> z.ctypes.data == address, int(z.sum())
        (True, 0)
    """

    def __init__(self, max_buffers: int = 16, alignment: int = ALIGNMENT):
        self.max_buffers = max_buffers
        self.alignment = alignment
        self._buffers = []
        self._lock = threading.Lock()
        # The count of a buffer held by the pool's list alone, measured on
        # the code path that counts the pool's buffers.
        [self._idle_count] = _reference_counts([np.empty(0, np.uint8)])

    def __len__(self) -> int:
        """The number of buffers kept, in use or idle."""
        return len(self._buffers)

    def empty(self, shape, dtype=np.float32) -> np.ndarray:
        """An aligned C-contiguous array of undefined content.

        Args:
            shape: tuple of ints.
            dtype: the array's dtype.

        Returns:
            A writeable array of ``shape`` and ``dtype``.
        """
        array, _ = self._array(shape, dtype)
        return array

    def zeros(self, shape, dtype=np.float32) -> np.ndarray:
        """An aligned C-contiguous array of zeros (see :meth:`empty`)."""
        array, fresh = self._array(shape, dtype)
        if not fresh:  # new buffers are zeros already, and left untouched
            array.fill(0)
        return array

    def clear(self) -> None:
        """Forget every buffer: idle ones are freed, those in use are freed
        once their last view goes."""
        with self._lock:
            self._buffers = []

    def _array(self, shape, dtype):
        """An array of ``shape`` and ``dtype`` and whether its buffer is new
        (then it holds zeros)."""
        dtype = np.dtype(dtype)
        shape = tuple(int(n) for n in shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        needed = nbytes + self.alignment
        with self._lock:
            idle = self._idle()
            fitting = [b for b in idle if needed <= b.nbytes <= 2 * needed]
            fresh = not fitting
            if fresh:
                buffer = np.zeros(needed, dtype=np.uint8)
                self._keep(buffer, idle)
            else:
                buffer = min(fitting, key=lambda b: b.nbytes)
            # The view references the buffer before the lock is released:
            # no other thread sees it idle.
            start = -buffer.ctypes.data % self.alignment
            array = buffer[start : start + nbytes].view(dtype).reshape(shape)
        return array, fresh

    def _idle(self):
        """The buffers nothing but the pool holds (call under the lock)."""
        counts = _reference_counts(self._buffers)
        return [b for b, n in zip(self._buffers, counts) if n <= self._idle_count]

    def _keep(self, buffer, idle):
        """Add ``buffer`` to the pool, in place of an idle one if it is full."""
        if len(self._buffers) >= self.max_buffers:
            if not idle:
                return
            smallest = min(range(len(idle)), key=lambda i: idle[i].nbytes)
            self._buffers = [b for b in self._buffers if b is not idle[smallest]]
        self._buffers.append(buffer)


BATCH_BUFFERS = BufferPool()
"""The pool of the batches of :meth:`MegapixelMNISTSplit.render_batch` and
:class:`MegapixelMNISTSequence` (shared by every split and sequence of the
process, so that the test batches reuse the training batches' memory)."""
