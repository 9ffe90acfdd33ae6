"""Host-side patch sources: one image read patch by patch, never whole.

A ``PatchSource`` is one data point (an image; 1 to 3 spatial dimensions and
a channel axis) at two resolutions: a *low-resolution view* small enough to
hold in memory, which the attention network looks at, and a *patch level*
(usually the full resolution) that is only ever read patch by patch. Reading
a patch touches only the part of the patch level (the tiles, chunks or
pages) that the patch overlaps; the pixels of a patch outside the image are
zeros, as in ``ats.ops.extract_patches``.

Sources live on the host and speak numpy. ``ArraySource`` wraps anything
sliceable like a numpy array: in-memory arrays, ``numpy.memmap`` (e.g.
``np.load(path, mmap_mode="r")``) and zarr arrays. ``ats.data.tiff.TiffSource``
reads pyramidal tiled TIFFs and ``ats.data.slide.SlideSource`` OpenSlide-
compatible slides. ``ats.lazy`` trains and runs models on them without ever
building the high-resolution tensor.

Every source gets a process-wide integer ``id`` at construction; models
refer to it through ``reference()`` rows (see ``ats.lazy``), so the source
must stay alive (referenced) while a model reads from it.

Patches are read on a process-wide thread pool (``read_many``; its size is
``read_threads()``, set by ``set_read_threads`` or the environment variable
``ATS_READ_THREADS``): the patches of a batch are decoded in parallel, since
the decoders (JPEG, zlib, OpenSlide) release the GIL. A source whose reads
are not safe from several threads at once (``thread_safe = False``, the
default) is read by one thread at a time.
"""

import concurrent.futures
import itertools
import os
import threading
import weakref

import numpy as np

from .. import checks

__all__ = [
    "PatchSource",
    "ArraySource",
    "PatchReadError",
    "SourceError",
    "get_source",
    "check_level_shapes",
    "PyramidSource",
    "read_many",
    "read_threads",
    "set_read_threads",
]

_SOURCES = weakref.WeakValueDictionary()
_NEXT_ID = itertools.count()
_ID_LOCK = threading.Lock()
_POOL_LOCK = threading.Lock()
_POOL = {"threads": None, "executor": None, "pid": None}


def _default_read_threads():
    """``ATS_READ_THREADS`` if set, else up to 4 of the usable cores."""
    value = os.environ.get("ATS_READ_THREADS")
    if value is not None:
        if not value.strip().isdigit() or int(value) < 1:
            checks.fail("ATS_READ_THREADS", "an int >= 1", value, "environment")
        return int(value)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def read_threads():
    """How many threads read patches (``read_many``, ``PatchSource.read``).

    Returns:
        int >= 1: what ``set_read_threads`` set, else the environment
        variable ``ATS_READ_THREADS``, else the usable cores, at most 4.
    """
    threads = _POOL["threads"]
    return _default_read_threads() if threads is None else threads


def set_read_threads(threads):
    """Set how many threads read patches, process-wide.

    Args:
        threads: int >= 1 (1: read in the calling thread), or None for the
            default (``ATS_READ_THREADS``, else up to 4 usable cores).

    Example:
        >>> from ats.data import read_threads, set_read_threads
        >>> set_read_threads(2)
        >>> read_threads()
        2
        >>> set_read_threads(None)
    """
    if threads is not None:
        threads = checks.integer(
            "threads", threads, minimum=1, where="set_read_threads"
        )
    with _POOL_LOCK:
        _POOL["threads"] = threads


def _executor(threads):
    """The process's reading pool of ``threads`` threads (made anew after a
    fork or a change of size)."""
    with _POOL_LOCK:
        pool = _POOL["executor"]
        if pool is None or _POOL["pid"] != os.getpid() or pool._max_workers != threads:
            if pool is not None and _POOL["pid"] == os.getpid():
                pool.shutdown(wait=False)
            pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=threads, thread_name_prefix="ats-read"
            )
            _POOL.update(executor=pool, pid=os.getpid())
        return pool


def read_many(requests, size, threads=None):
    """Read patches of several sources on the reading thread pool.

    Args:
        requests: sequence of ``(source, corners)``: a ``PatchSource`` and
            its ``(N_i, ndim)`` integer top-left corners.
        size: tuple of ``ndim`` positive ints, the patch size.
        threads: int >= 1, or None for ``read_threads()``.

    Returns:
        list of ``(N_i, *size, C_i)`` arrays, one per request, in order.

    Raises:
        PatchReadError: a read failed (the first failing patch, in order).

    Example:
        >>> import numpy as np
        >>> from ats.data import ArraySource, read_many
        >>> a = ArraySource(np.ones((64, 64, 1)), low=np.ones((8, 8, 1)))
        >>> b = ArraySource(np.zeros((32, 32, 3)), low=np.zeros((4, 4, 3)))
        >>> patches = read_many([(a, [[0, 0]]), (b, [[5, 5], [9, 9]])], (16, 16))
        >>> [p.shape for p in patches]
        [(1, 16, 16, 1), (2, 16, 16, 3)]
    """
    size = tuple(int(s) for s in size)
    if threads is None:
        threads = read_threads()
    threads = checks.integer("threads", threads, minimum=1, where="read_many")
    outputs, tasks = [], []
    for source, corners in requests:
        corners = source._checked_corners(corners, size)
        patches = np.zeros((len(corners), *size, source.shape[-1]), source.dtype)
        outputs.append(patches)
        tasks += [(source, patches, i, corner) for i, corner in enumerate(corners)]

    def read_one(task):
        source, patches, i, corner = task
        source._read_patch_into(patches, i, corner, size)

    if threads <= 1 or len(tasks) <= 1:
        for task in tasks:
            read_one(task)
    else:
        for _ in _executor(threads).map(read_one, tasks):
            pass
    return outputs


class SourceError(ValueError):
    """A source is unusable: corrupt file, missing level, bad shape, ...

    Raised when the source is opened or checked, before any training starts;
    the message names the file (or source) and the problem.
    """


class PatchReadError(OSError):
    """Reading a patch failed while a model was running.

    The message names the file (or source), the patch's corner and size in
    the patch level and the underlying error; no patch is ever silently
    replaced by zeros.
    """


def get_source(source_id):
    """The live ``PatchSource`` with id ``source_id``.

    Args:
        source_id: int, a ``PatchSource.id``.

    Returns:
        The source.

    Raises:
        LookupError: no open source has that id (it was closed or garbage
            collected).
    """
    source = _SOURCES.get(int(source_id))
    if source is None:
        raise LookupError(
            f"no open PatchSource has id {int(source_id)}: it was closed or "
            "garbage collected; keep the sources alive (e.g. in the "
            "SourceSequence that feeds the model) while a model reads them"
        )
    return source


def check_level_shapes(name, level_shapes, low_level, patch_level=0, scale=None):
    """Check the levels a pyramidal source reads and return their shapes.

    Args:
        name: the file name, for error messages.
        level_shapes: list of spatial shapes, finest (level 0) first.
        low_level: int, the level of the low-resolution view.
        patch_level: int, the level patches are read from.
        scale: optional float or tuple, the declared size of the low view
            relative to the patch level; each side of ``low_level`` must be
            within one pixel of ``scale`` times that of ``patch_level``.

    Returns:
        ``(low_shape, patch_shape)``: spatial shapes of the two levels.

    Raises:
        SourceError: a level is missing, the low level is finer than the
            patch level, or a shape does not match ``scale``.
    """
    n = len(level_shapes)
    for argument, level in (("low_level", low_level), ("patch_level", patch_level)):
        level = checks.integer(argument, level, where=name)
        if not 0 <= level < n:
            raise SourceError(
                f"{name}: the pyramid has {n} level(s) (shapes "
                f"{[tuple(s) for s in level_shapes]}), so `{argument}`="
                f"{level} does not exist"
            )
    low = tuple(level_shapes[low_level])
    high = tuple(level_shapes[patch_level])
    if any(lo > hi for lo, hi in zip(low, high)):
        raise SourceError(
            f"{name}: the low-resolution level {low_level} {low} must not be "
            f"larger than the patch level {patch_level} {high}"
        )
    if scale is not None:
        factors = np.broadcast_to(np.asarray(scale, dtype=float), (len(high),))
        expected = np.asarray(high) * factors
        if np.any(factors <= 0) or np.any(np.abs(np.asarray(low) - expected) >= 1):
            raise SourceError(
                f"{name}: level {low_level} has shape {low} but the declared "
                f"scale {scale} of level {patch_level} {high} means "
                f"{tuple(float(e) for e in expected)} (within one pixel)"
            )
    return low, high


class PatchSource:
    """One data point at two resolutions, read patch by patch on the host.

    Subclasses call ``__init__`` with their name, patch-level shape and dtype,
    and implement ``low()`` and ``_read(start, stop)``.

    Args:
        name: str, what error messages call the source (e.g. its file).
        shape: ``(*spatial, C)`` shape of the patch level.
        low_shape: ``(*spatial, C)`` shape of the low-resolution view.
        dtype: numpy dtype of both.

    Attributes:
        id: int, process-wide id that models use to find the source.
        name, shape, low_shape, dtype: as given.
        thread_safe: bool (class attribute), whether ``_read`` may run in
            several threads at once; if not, reads take the source's lock.
    """

    thread_safe = False

    def __init__(self, name, shape, low_shape, dtype):
        self.name = str(name)
        self.shape = tuple(int(s) for s in shape)
        self.low_shape = tuple(int(s) for s in low_shape)
        self.dtype = np.dtype(dtype)
        if not 2 <= len(self.shape) <= 4 or len(self.low_shape) != len(self.shape):
            raise SourceError(
                f"{self.name}: shapes must be (*spatial, channels) with 1 to "
                f"3 spatial dimensions and the same rank at both "
                f"resolutions, got {self.shape} and low view "
                f"{self.low_shape}"
            )
        if self.low_shape[-1] != self.shape[-1]:
            raise SourceError(
                f"{self.name}: the low view has {self.low_shape[-1]} "
                f"channel(s) but the patch level has {self.shape[-1]}"
            )
        self._lock = threading.RLock()
        with _ID_LOCK:
            self.id = next(_NEXT_ID)
            _SOURCES[self.id] = self

    @property
    def spatial_shape(self):
        """The spatial shape of the patch level."""
        return self.shape[:-1]

    def reference(self, low_shape=None):
        """The row a model reads this source by: ``[id, *spatial_shape]``.

        With ``low_shape``, the *wide* row ``[id, *spatial_shape,
        *low_shape]``: a model that batches low views of different shapes
        (padded to a common one, ``ats.lazy.BucketedSequence``) maps
        positions to this image's pixels with its own scale ``spatial_shape
        / low_shape``.

        Args:
            low_shape: optional tuple of ``ndim`` positive ints, the spatial
                shape of the image's own (unpadded) low view.

        Returns:
            ``(1 + ndim,)`` int32 array, or ``(1 + 2 * ndim,)`` with
            ``low_shape``.

        Example:
            >>> import numpy as np
            >>> from ats.data import ArraySource
            >>> source = ArraySource(np.zeros((40, 60, 1)), low=np.zeros((4, 6, 1)))
            >>> source.reference(source.low_shape[:-1])[1:].tolist()
            [40, 60, 4, 6]
        """
        if low_shape is None:
            return np.asarray([self.id, *self.spatial_shape], dtype=np.int32)
        low_shape = checks.int_tuple(
            "low_shape",
            low_shape,
            length=len(self.spatial_shape),
            where=f"{self.name}: reference",
        )
        return np.asarray([self.id, *self.spatial_shape, *low_shape], dtype=np.int32)

    def check_patch_size(self, patch_size):
        """Raise ``SourceError`` unless ``patch_size`` fits in the image.

        Args:
            patch_size: tuple of ints, one per spatial dimension.
        """
        size = checks.int_tuple(
            "patch_size", patch_size, length=len(self.spatial_shape), where=self.name
        )
        if any(p > s for p, s in zip(size, self.spatial_shape)):
            checks.fail(
                "patch_size",
                f"at most the image's spatial shape {self.spatial_shape} on every axis",
                size,
                self.name,
                SourceError,
            )

    def low(self):
        """The low-resolution view, ``(*low_spatial, C)`` of ``dtype``."""
        raise NotImplementedError

    def _read(self, start, stop):
        """The in-bounds window ``[start, stop)`` of the patch level.

        Args:
            start, stop: tuples of ints with ``0 <= start < stop <= shape``.

        Returns:
            ``(*(stop - start), C)`` array.
        """
        raise NotImplementedError

    def read(self, corners, size, threads=None):
        """Read patches of the patch level at top-left ``corners``.

        Only the part of the image a patch overlaps is read; its pixels
        outside the image are zeros (``ats.ops.extract_patches`` semantics).
        The patches are read on the reading thread pool (``read_many``).

        Args:
            corners: ``(N, ndim)`` integer top-left corners (may be negative
                or overhang the far border).
            size: tuple of ``ndim`` positive ints.
            threads: int >= 1, or None for ``read_threads()``.

        Returns:
            ``(N, *size, C)`` array of ``dtype``.

        Raises:
            PatchReadError: a read failed; the message names the source, the
                corner and the cause (for a tiled file, the level and tile).
        """
        return read_many([(self, corners)], size, threads)[0]

    def _checked_corners(self, corners, size):
        """``corners`` as an ``(N, ndim)`` int64 array, or ValueError."""
        corners = np.asarray(corners, dtype=np.int64)
        ndim = len(self.spatial_shape)
        if corners.ndim != 2 or corners.shape[1] != ndim or len(size) != ndim:
            raise ValueError(
                f"{self.name}: `corners` must have shape (N, {ndim}) and "
                f"`size` {ndim} entries, got {corners.shape} and {size}"
            )
        return corners

    def _read_patch_into(self, patches, i, corner, size):
        """Read the patch at ``corner`` into ``patches[i]`` (zeros outside
        the image); one thread at a time unless ``thread_safe``."""
        extent = np.asarray(self.spatial_shape)
        start = np.maximum(corner, 0)
        stop = np.minimum(corner + size, extent)
        if np.any(stop <= start):
            return  # entirely outside the image: all zeros
        try:
            if self.thread_safe:
                window = self._read(tuple(start.tolist()), tuple(stop.tolist()))
            else:
                with self._lock:
                    window = self._read(tuple(start.tolist()), tuple(stop.tolist()))
            window = np.asarray(window)
            expected = (*(stop - start).tolist(), self.shape[-1])
            if window.shape != expected:
                raise ValueError(
                    f"got a window of shape {window.shape} instead of {expected}"
                )
        except Exception as error:
            raise PatchReadError(
                f"{self.name}: cannot read the patch of size {size} at "
                f"corner {tuple(corner.tolist())} (pixels "
                f"{tuple(start.tolist())} to {tuple(stop.tolist())} of "
                f"an image of shape {self.spatial_shape}): "
                f"{type(error).__name__}: {error}"
            ) from error
        inner = tuple(
            slice(a, b)
            for a, b in zip((start - corner).tolist(), (stop - corner).tolist())
        )
        patches[(i, *inner)] = window

    def close(self):
        """Release the source's files; later reads fail with a clear error."""
        with _ID_LOCK:
            if _SOURCES.get(self.id) is self:
                del _SOURCES[self.id]

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return (
            f"{type(self).__name__}({self.name!r}, shape={self.shape}, "
            f"low_shape={self.low_shape}, dtype={self.dtype})"
        )


class PyramidSource(PatchSource):
    """A ``PatchSource`` over a pyramid that a library opens (a slide).

    Subclasses open the file as ``self._slide`` (which has ``close()``),
    implement ``_region(start, level, shape)`` -> ``(h, w, C)`` pixels of
    ``level`` from ``start`` ``(row, col)`` and ``_read``, and call
    ``_init_levels``. ``low()`` is the low level, read whole at open;
    ``close()`` closes the slide too.
    """

    def _init_levels(self, path, level_shapes, low_level, patch_level, scale):
        """Check the levels, read the low level whole and initialise the
        source (attributes ``path``, ``low_level``, ``patch_level``,
        ``levels``); the slide is closed if anything fails.

        Args:
            path: the file name, for error messages.
            level_shapes, low_level, patch_level, scale: as in
                ``check_level_shapes``.

        Returns:
            The patch level's spatial shape.

        Raises:
            SourceError: as ``check_level_shapes``, or the low level cannot
                be read.
        """
        try:
            low, high = check_level_shapes(
                path, level_shapes, low_level, patch_level, scale
            )
            try:
                x_low = self._region((0, 0), low_level, low)
            except Exception as error:
                raise SourceError(
                    f"{path}: cannot read pyramid level {low_level}: "
                    f"{type(error).__name__}: {error}"
                ) from error
        except BaseException:
            self._slide.close()
            raise
        super().__init__(path, (*high, x_low.shape[-1]), x_low.shape, x_low.dtype)
        self.path = path
        self.low_level = low_level
        self.patch_level = patch_level
        self.levels = level_shapes
        self._low = x_low
        return high

    def low(self):
        return self._low

    def close(self):
        super().close()
        self._slide.close()


class ArraySource(PatchSource):
    """A source over an array-like: numpy array, ``numpy.memmap``, zarr array.

    ``high`` is only ever sliced, so a memmap reads only the pages and a zarr
    array only the chunks that a patch overlaps.

    Args:
        high: ``(*spatial, C)`` array-like supporting numpy basic slicing
            (``np.ndarray``, ``np.memmap``, ``zarr.Array``, ...), the patch
            level.
        low: ``(*low_spatial, C)`` array, the low-resolution view (held in
            memory).
        name: str, what error messages call it; defaults to the memmap's
            file name or the array's type and shape.

    Example:
        >>> import numpy as np
        >>> from ats.data import ArraySource
        >>> x_high = np.ones((512, 512, 3), "uint8")  # or np.load(..., mmap_mode="r")
        >>> source = ArraySource(x_high, low=x_high[::8, ::8])
        >>> source.read([[0, 0], [100, 200]], (64, 64)).shape
        (2, 64, 64, 3)
    """

    def __init__(self, high, low, name=None):
        low = np.asarray(low)
        shape = tuple(getattr(high, "shape", ()))
        dtype = getattr(high, "dtype", None)
        if name is None:
            name = (
                getattr(high, "filename", None)
                or f"{type(high).__name__} of shape {shape}"
            )
        if dtype is None or not hasattr(high, "__getitem__"):
            raise TypeError(
                f"{name}: `high` must be an array-like with shape, dtype and "
                f"slicing, got {type(high).__name__}"
            )
        if np.dtype(dtype) != low.dtype:
            raise SourceError(
                f"{name}: the low view's dtype {low.dtype} differs from the "
                f"patch level's {np.dtype(dtype)}"
            )
        super().__init__(name, shape, low.shape, dtype)
        if any(lo > hi for lo, hi in zip(low.shape[:-1], shape[:-1])):
            raise SourceError(
                f"{self.name}: the low view {low.shape} must not be larger "
                f"than the patch level {shape}"
            )
        self._high = high
        self._low = low

    def low(self):
        return self._low

    def _read(self, start, stop):
        return self._high[tuple(slice(a, b) for a, b in zip(start, stop))]
