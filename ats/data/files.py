"""Image files of any format and size as patch sources, values in [0, 1].

``open_image(path, low_scale)`` opens one file as a ``PatchSource`` whose
values are float32 in [0, 1] at both resolutions (uint8 / 255, uint16 /
65535, float files as they are, which must already lie in [0, 1]), of shape
``(H, W, C)``. Its low-resolution view keeps the image's aspect: each side is
``max(1, round(side * low_scale))``. It comes from a pyramid level when the
file has one (the finest level not coarser than the target, area-averaged to
it); otherwise it is a downscaled copy (area averaging) computed once and
cached as ``.npz`` in ``cache_dir``, keyed on the file's absolute path, size,
modification and change times, a SHA-256 of its first and last MiB, the low
shape and a version, so that a changed file is never served stale.

Formats (``FORMATS``): PNG and JPEG (Pillow; 8 or 16 bits, grayscale or RGB;
RGBA drops its alpha and palette images become RGB), plain and pyramidal TIFF
(``.tif``, ``.tiff``, ``.ome.tif``, ``.svs``; tifffile, reusing
``TiffSource`` for tiled files), the other OpenSlide formats (``.ndpi``,
``.mrxs``, ``.scn``, ...; ``SlideSource``, through OpenSlide when it is
installed, else tiffslide), DICOM whole-slide images (a folder of ``.dcm``
instances, or one; ``ats.data.dicom.DicomSource``, with the optional
``wsidicom``), ``.npy`` arrays (memory-mapped) and zarr arrays (a
directory). A file whose name ends otherwise is recognised by its first
bytes (TIFF, PNG, JPEG, DICOM, ``.npy``). ``probe_image(path)`` reads only a
file's header.

Physical resolution: with ``patch_mpp`` (microns per pixel), patches are
read in pixels of that size: from the coarsest pyramid level at least as
fine, resized (area averaging) when no level matches
(:func:`ats.data.resolution.choose_level`); with ``low_mpp`` the low view
has pixels of that size. The slide's own mpp comes from its metadata
(:func:`ats.data.resolution.slide_mpp`); a file without any is an error
when mpp is asked for.

PNG and JPEG files cannot be read window by window: a patch read decodes the
whole image, kept in a small process-wide cache of recently decoded images
(``DECODED_CACHE_BYTES``), so that reading a batch's patches decodes each
image once. Images too large for that cache are decoded at every patch read:
store such images as tiled (pyramidal) TIFF instead.
"""

import collections
import hashlib
import json
import math
import os
import tempfile
import threading
from typing import NamedTuple

import numpy as np

from .. import checks
from .dicom import DicomSource
from .resolution import (
    checked_mpps,
    choose_level,
    level_mpps,
    property_mpp,
    resized_shape,
)
from .slide import SlideSource
from .sources import ArraySource, PatchSource, SourceError
from .tiff import TiffSource, import_tiff_libraries, tiff_mpp

__all__ = [
    "FORMATS",
    "ImageInfo",
    "ImageSource",
    "image_format",
    "low_view_shape",
    "open_image",
    "probe_image",
]

CACHE_VERSION = 1
"""Bumped whenever the cached low views would change; part of the key."""

DECODED_CACHE_BYTES = 512 * 2**20
"""Bytes of decoded PNG/JPEG images kept in memory for patch reads."""

_PILLOW = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}
_TIFF = {".tif": "tiff", ".tiff": "tiff", ".svs": "tiff"}
_SLIDE = dict.fromkeys(
    (".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide"), "slide"
)
_ARRAY = {".npy": "npy"}
_DICOM = {".dcm": "dicom"}
_ZARR_MARKERS = (".zarray", ".zgroup", "zarr.json")
_MAGIC = (
    (0, b"II*\x00", "tiff"),
    (0, b"MM\x00*", "tiff"),
    (0, b"II+\x00", "tiff"),  # BigTIFF
    (0, b"MM\x00+", "tiff"),
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"\x93NUMPY", "npy"),
    (128, b"DICM", "dicom"),
)
"""``(offset, bytes, format)``: how a file's first bytes say its format."""

FORMATS = {
    "png": (".png",),
    "jpeg": (".jpg", ".jpeg"),
    "tiff": (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".svs"),
    "slide": tuple(sorted(_SLIDE)),
    "dicom": (".dcm", "a folder of DICOM .dcm instances"),
    "npy": (".npy",),
    "zarr": ("a zarr array directory",),
}
"""The formats ``open_image`` reads and their file name endings."""


class ImageInfo(NamedTuple):
    """What a file's header says about the image.

    Attributes:
        shape: ``(H, W, C)`` of the image as ``open_image`` gives it (after
            dropping alpha, palette images as RGB).
        dtype: numpy dtype of the stored values.
        format: one of ``FORMATS``.
        levels: list of ``(h, w)`` spatial shapes of the pyramid levels,
            finest first (one entry when there is no pyramid).
    """

    shape: tuple
    dtype: np.dtype
    format: str
    levels: list


def _accepted():
    return "; ".join(f"{name}: {', '.join(ends)}" for name, ends in FORMATS.items())


def _sniffed_format(path):
    """The format a file's first bytes say (``_MAGIC``), or None."""
    try:
        with open(path, "rb") as file:
            head = file.read(132)
    except OSError:
        return None
    for offset, magic, fmt in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return fmt
    return None


def _folder_format(path):
    """``"zarr"`` for a zarr store, ``"dicom"`` for a folder of DICOM
    instances (``.dcm`` files, or files starting as DICOM), else None."""
    names = os.listdir(path)
    if any(marker in names for marker in _ZARR_MARKERS):
        return "zarr"
    for name in sorted(names):
        full = os.path.join(path, name)
        if os.path.isfile(full) and (
            name.lower().endswith(".dcm") or _sniffed_format(full) == "dicom"
        ):
            return "dicom"
    return None


def image_format(path):
    """The format ``open_image`` reads ``path`` as.

    By the file name's ending (``FORMATS``); a folder is a zarr array or a
    DICOM slide by what it holds; a file of another ending by its first
    bytes (TIFF, PNG, JPEG, DICOM, ``.npy``).

    Args:
        path: str or path-like.

    Returns:
        One of the keys of ``FORMATS``.

    Raises:
        SourceError: the format is not known; the message names the file
            and the accepted formats.

    Example:
        >>> from ats.data.files import image_format
        >>> image_format("slides/case01.svs"), image_format("slides/case02.mrxs")
        ('tiff', 'slide')
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return _folder_format(path) or "zarr"
    ext = os.path.splitext(path)[1].lower()
    for table in (_PILLOW, _TIFF, _SLIDE, _DICOM, _ARRAY):
        if ext in table:
            return table[ext]
    sniffed = _sniffed_format(path)
    if sniffed is not None:
        return sniffed
    raise SourceError(
        f"{path}: unknown image format {ext or '(no extension)'!r} and "
        f"contents; accepted formats are {_accepted()}"
    )


def low_view_shape(spatial_shape, low_scale):
    """The low view's spatial shape: ``max(1, round(side * low_scale))``.

    Args:
        spatial_shape: tuple of ints, the full-resolution spatial shape.
        low_scale: float in (0, 1].

    Returns:
        tuple of ints.

    Example:
        >>> from ats.data.files import low_view_shape
        >>> low_view_shape((960, 1280), 0.3)
        (288, 384)
    """
    return tuple(max(1, int(round(s * low_scale))) for s in spatial_shape)


# --- reading the formats -------------------------------------------------------


def _pillow_mode(path, mode):
    """``(convert_to, dtype, channels)`` for a Pillow image mode."""
    if mode in ("L", "1"):
        return "L", np.uint8, 1
    if mode == "LA":
        return "L", np.uint8, 1
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        return None, np.uint16, 1
    if mode in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "RGBX", "LAB", "HSV"):
        return "RGB", np.uint8, 3
    if mode == "F":
        return None, np.float32, 1
    raise SourceError(f"{path}: unsupported Pillow image mode {mode!r}")


def _pillow_open(path):
    from PIL import Image

    try:
        return Image.open(path)
    except FileNotFoundError:
        raise
    except Exception as error:
        raise SourceError(
            f"{path}: not a readable image: {type(error).__name__}: {error}"
        ) from error


def _pillow_array(path, image, convert):
    """Decode a Pillow image to ``(H, W, C)`` of its dtype."""
    _, dtype, channels = _pillow_mode(path, image.mode)
    try:
        if convert is not None and image.mode != convert:
            image = image.convert(convert)
        array = np.asarray(image)
    except Exception as error:
        raise SourceError(
            f"{path}: cannot decode the image: {type(error).__name__}: {error}"
        ) from error
    if dtype == np.uint16 and array.dtype != np.uint16:
        array = np.clip(array, 0, 65535).astype(np.uint16)
    return array.reshape(array.shape[0], array.shape[1], channels).astype(
        dtype, copy=False
    )


class _Decoded:
    """Process-wide LRU cache of decoded PNG/JPEG images."""

    def __init__(self):
        self.items = collections.OrderedDict()
        self.bytes = 0
        self.lock = threading.Lock()

    def get(self, key, decode):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        array = decode()
        with self.lock:
            if key not in self.items and array.nbytes <= DECODED_CACHE_BYTES:
                self.items[key] = array
                self.bytes += array.nbytes
                while self.bytes > DECODED_CACHE_BYTES:
                    _, old = self.items.popitem(last=False)
                    self.bytes -= old.nbytes
        return array


_DECODED = _Decoded()


class _PillowArray:
    """An array-like over a PNG/JPEG file: slicing decodes it (cached)."""

    def __init__(self, path, shape, dtype, convert):
        self.path = path
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.convert = convert
        stat = os.stat(path)
        self._key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)

    def _decode(self):
        with _pillow_open(self.path) as image:
            array = _pillow_array(self.path, image, self.convert)
        if array.shape != self.shape:
            raise SourceError(
                f"{self.path}: decoded shape {array.shape} differs from the "
                f"header's {self.shape}"
            )
        return array

    def __getitem__(self, index):
        return _DECODED.get(self._key, self._decode)[index]


def _pillow_header(path, fmt):
    """``(ImageInfo, mode to convert to)`` from a PNG/JPEG header."""
    with _pillow_open(path) as image:
        convert, dtype, channels = _pillow_mode(path, image.mode)
        width, height = image.size
    info = ImageInfo((height, width, channels), np.dtype(dtype), fmt, [(height, width)])
    return info, convert


def _tiff_series(path):
    tifffile, _ = import_tiff_libraries(path)
    try:
        tif = tifffile.TiffFile(path)
    except FileNotFoundError:
        raise
    except Exception as error:
        raise SourceError(
            f"{path}: not a readable TIFF file: {type(error).__name__}: {error}"
        ) from error
    try:
        series = tif.series[0]
        levels = [tuple(level.shape) for level in series.levels]
        axes = series.axes
        dtype = np.dtype(series.dtype)
        tiled = bool(series.levels[0].keyframe.is_tiled)
    except Exception as error:
        tif.close()
        raise SourceError(
            f"{path}: corrupt TIFF structure: {type(error).__name__}: {error}"
        ) from error
    if axes not in ("YX", "YXS"):
        tif.close()
        raise SourceError(
            f"{path}: the image has axes {axes!r}; TIFF files are read as 2-D "
            "images with axes 'YX' (one channel) or 'YXS' (interleaved samples)"
        )
    channels = levels[0][2] if axes == "YXS" else 1
    return tif, series, [lv[:2] for lv in levels], channels, dtype, tiled


def _probe_tiff(path):
    tif, _, levels, channels, dtype, _ = _tiff_series(path)
    tif.close()
    return ImageInfo((*levels[0], _kept_channels(channels)), dtype, "tiff", levels)


def _slide_library():
    try:
        import openslide  # noqa: F401

        return "openslide"
    except ImportError:
        return "tiffslide"


def _probe_slide(path):
    library = _slide_library()
    source = _open_slide(path, library, None)
    info = ImageInfo(
        (*source.levels[0], source.shape[-1]),
        source.dtype,
        "slide",
        source.levels,
    )
    source.close()
    return info


def _open_slide(path, library, low_level, patch_level=0):
    """A ``SlideSource`` whose own low level is ``low_level``, or the
    coarsest (cheap to read) if None."""
    from .slide import _open_slide as open_raw

    try:
        slide = open_raw(path, library)
        n_levels = len(slide.level_dimensions)
        slide.close()
    except ImportError:
        raise
    except Exception as error:
        raise SourceError(
            f"{path}: {library} cannot open it as a slide: "
            f"{type(error).__name__}: {error}"
        ) from error
    return SlideSource(
        path,
        low_level=n_levels - 1 if low_level is None else low_level,
        library=library,
        patch_level=patch_level,
    )


def _npy(path):
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise
    except Exception as error:
        raise SourceError(
            f"{path}: not a readable .npy array: {type(error).__name__}: {error}"
        ) from error
    return _image_array(path, array)


def _zarr(path):
    _, zarr = import_tiff_libraries(path)
    try:
        array = zarr.open(path, mode="r")
    except Exception as error:
        raise SourceError(
            f"{path}: not a readable zarr array: {type(error).__name__}: {error}"
        ) from error
    if not hasattr(array, "dtype"):
        raise SourceError(
            f"{path}: is a zarr group; open_image reads a zarr array (open "
            "the array's own directory)"
        )
    return _image_array(path, array)


def _image_array(path, array):
    """``array`` checked and viewed as ``(H, W, C)``."""
    if array.ndim == 2:
        array = array[..., None] if isinstance(array, np.ndarray) else _Reshaped(array)
    if array.ndim != 3:
        raise SourceError(
            f"{path}: an image array must have shape (H, W) or (H, W, C), got "
            f"{tuple(array.shape)}"
        )
    _scale_of(path, array.dtype)
    return array


class _Reshaped:
    """A 2-D array-like seen as ``(H, W, 1)``."""

    def __init__(self, array):
        self.array = array
        self.shape = (*array.shape, 1)
        self.dtype = np.dtype(array.dtype)
        self.ndim = 3

    def __getitem__(self, index):
        index = index if isinstance(index, tuple) else (index,)
        return np.asarray(self.array[index[:2]])[..., None]


def _scale_of(path, dtype):
    """What the stored values are divided by to lie in [0, 1]."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return 1.0
    if np.issubdtype(dtype, np.unsignedinteger):
        return float(np.iinfo(dtype).max)
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise SourceError(
        f"{path}: values of dtype {dtype} are not supported; an image must be "
        "unsigned integers (divided by their maximum) or floats in [0, 1]"
    )


def _kept_channels(channels):
    """Alpha dropped: 2 (gray + alpha) -> 1, 4 (RGBA) -> 3."""
    return {2: 1, 4: 3}.get(channels, channels)


def probe_image(path):
    """What an image file holds, from its header only.

    Args:
        path: str or path-like, a file (or zarr directory) of ``FORMATS``.

    Returns:
        ``ImageInfo(shape, dtype, format, levels)``.

    Raises:
        FileNotFoundError: no such file.
        SourceError: unknown format, or the header cannot be read.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from PIL import Image
        >>> from ats.data import probe_image
        >>> path = os.path.join(tempfile.mkdtemp(), "photo.png")
        >>> Image.fromarray(np.zeros((300, 400, 3), "uint8")).save(path)
        >>> probe_image(path).shape
        (300, 400, 3)
    """
    path = os.fspath(path)
    fmt = image_format(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if fmt in ("png", "jpeg"):
        return _pillow_header(path, fmt)[0]
    if fmt == "tiff":
        return _probe_tiff(path)
    if fmt == "slide":
        return _probe_slide(path)
    if fmt == "dicom":
        source = DicomSource(path, low_level=None)
        info = ImageInfo(
            (*source.levels[0], source.shape[-1]), source.dtype, "dicom", source.levels
        )
        source.close()
        return info
    array = _npy(path) if fmt == "npy" else _zarr(path)
    shape = tuple(int(s) for s in array.shape)
    return ImageInfo(shape, np.dtype(array.dtype), fmt, [shape[:2]])


# --- resizing and caching ------------------------------------------------------


def _area_axis(x, edges, axis):
    """Area average of ``x`` along ``axis`` over ``[edges[i], edges[i+1])``
    (fractional input coordinates)."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    n = x.shape[0]
    total = np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0)])
    edges = np.clip(np.asarray(edges, dtype=np.float64), 0, n)
    whole = np.minimum(np.floor(edges).astype(np.int64), n - 1)
    frac = (edges - whole)[(...,) + (None,) * (x.ndim - 1)]
    at = total[whole] + frac * x[whole]
    width = np.diff(edges)[(...,) + (None,) * (x.ndim - 1)]
    out = (at[1:] - at[:-1]) / np.maximum(width, 1e-12)
    return np.moveaxis(out, 0, axis)


def _edges(n_in, n_out):
    return np.arange(n_out + 1) * (n_in / n_out)


def area_resize(image, shape):
    """Resize ``(h, w, C)`` to spatial ``shape`` by area averaging (any
    factors, up or down), float64."""
    out = _area_axis(image, _edges(image.shape[0], shape[0]), 0)
    return _area_axis(out, _edges(image.shape[1], shape[1]), 1)


def _downscale(window, spatial, channels, target, band_bytes=128 * 2**20):
    """Area-average a ``spatial`` image read through ``window(start, stop)``
    to ``target``, reading bands of rows so as not to hold it whole."""
    (height, width), (h, w) = spatial, target
    out = np.empty((h, w, channels), np.float64)
    factor = height / h
    rows = max(1, int(band_bytes // max(1.0, width * channels * 8 * factor)))
    edges = _edges(height, h)
    col_edges = _edges(width, w)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        a = int(math.floor(edges[r0]))
        b = min(height, int(math.ceil(edges[r1])))
        block = np.asarray(window((a, 0), (b, width)), dtype=np.float64)
        block = _area_axis(block, edges[r0 : r1 + 1] - a, 0)
        out[r0:r1] = _area_axis(block, col_edges, 1)
    return out


def _fingerprint(path):
    """Stat and content digest that change when the file (or store) does."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        entries = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                stat = os.stat(full)
                entries.append(
                    [os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns]
                )
        return {"path": path, "entries": entries}
    stat = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        digest.update(file.read(2**20))
        if stat.st_size > 2**20:
            file.seek(max(2**20, stat.st_size - 2**20))
            digest.update(file.read(2**20))
    return {
        "path": path,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "sha256": digest.hexdigest(),
    }


def _cache_file(cache_dir, path, low_shape, level=0):
    fields = {
        "file": _fingerprint(path),
        "low_shape": list(low_shape),
        "version": CACHE_VERSION,
    }
    if level:  # computed from a pyramid level other than 0
        fields["level"] = level
    key = json.dumps(fields, sort_keys=True)
    name = hashlib.sha256(key.encode()).hexdigest()
    return os.path.join(os.fspath(cache_dir), f"{name}.npz")


def _load_cached(file, low_shape):
    try:
        with np.load(file, allow_pickle=False) as data:
            low = np.asarray(data["low"], dtype=np.float32)
    except Exception:
        return None
    return low if low.shape[:-1] == tuple(low_shape) else None


def _save_cached(file, low):
    directory = os.path.dirname(file)
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, low=np.asarray(low, dtype=np.float32))
        os.replace(temporary, file)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


# --- the source ----------------------------------------------------------------


class ImageSource(PatchSource):
    """A source of float32 values in [0, 1] over a source of stored values.

    Reads patches from ``inner`` (a ``PatchSource`` of the file's own dtype),
    keeps its first ``channels`` channels (dropping alpha) and divides by
    ``scale``; with ``steps``, each read is resized (area averaging):
    pixel ``j`` read covers ``inner``'s pixels ``[j * step, (j + 1) *
    step)`` on each axis. ``open_image`` builds these; the low view is
    given.

    Args:
        inner: ``PatchSource`` over the stored values of the level patches
            are read from.
        low: ``(h, w, channels)`` float32 low view in [0, 1].
        scale: float, what stored values are divided by.
        channels: int, how many leading channels of ``inner`` to keep.
        format: str, the file's format.
        low_from: str, where the low view came from (``"pyramid level N"``,
            ``"cache"`` or ``"computed"``).
        spatial_shape: optional ``(h, w)``, the shape patches are read at
            (default: ``inner``'s).
        steps: optional ``(sy, sx)``, ``inner``'s pixels per pixel read
            (None: read as stored; then ``spatial_shape`` is ``inner``'s).
        downsample: optional ``(dy, dx)``, level-0 pixels per pixel read
            (default 1: patches at level 0).
        mpp: optional ``(mpp_y, mpp_x)``, microns per pixel read (None: not
            asked for).

    Attributes:
        path, format, low_from, inner, mpp: as given.
        downsample: ``(dy, dx)`` floats: a patch corner ``(y, x)`` is at
            level-0 pixel ``(y * dy, x * dx)`` (e.g. for annotations).
    """

    def __init__(
        self,
        inner,
        low,
        scale,
        channels,
        format,
        low_from,
        spatial_shape=None,
        steps=None,
        downsample=None,
        mpp=None,
    ):
        low = np.asarray(low, dtype=np.float32)
        shape = tuple(spatial_shape or inner.spatial_shape)
        super().__init__(inner.name, (*shape, channels), low.shape, np.float32)
        self.path = inner.name
        self.inner = inner
        self.format = format
        self.low_from = low_from
        self.downsample = tuple(float(d) for d in downsample or (1.0,) * len(shape))
        self.mpp = mpp
        self._scale = float(scale)
        self._channels = channels
        self._low = low
        self._steps = None if steps is None else tuple(float(s) for s in steps)

    def low(self):
        return self._low

    def _read(self, start, stop):
        if self._steps is None:
            window = np.asarray(self.inner._read(start, stop))[..., : self._channels]
            return window.astype(np.float32) / np.float32(self._scale)
        edges = [
            np.arange(a, b + 1) * step for a, b, step in zip(start, stop, self._steps)
        ]
        extent = self.inner.spatial_shape
        first = [min(int(math.floor(e[0])), n - 1) for e, n in zip(edges, extent)]
        last = [
            max(f + 1, min(n, int(math.ceil(e[-1]))))
            for e, f, n in zip(edges, first, extent)
        ]
        window = np.asarray(self.inner._read(tuple(first), tuple(last)))
        window = window[..., : self._channels]
        for axis, (e, f) in enumerate(zip(edges, first)):
            window = _area_axis(window, e - f, axis)
        return (window / self._scale).astype(np.float32)

    def close(self):
        super().close()
        self.inner.close()


class _Levels(NamedTuple):
    """Where an image is read: patches from ``patch_level``, each pixel
    read covering ``steps`` of its pixels (None: read as stored), in a
    ``patch_shape`` of ``downsample`` level-0 pixels per pixel and ``mpp``
    microns per pixel (None: not asked for); the low view at
    ``low_shape``."""

    patch_level: int
    patch_shape: tuple
    steps: tuple
    downsample: tuple
    low_shape: tuple
    mpp: tuple


def _no_mpp_message(path, fmt):
    where = (
        "no OpenSlide mpp property, Aperio MPP, OME-XML PhysicalSize, or TIFF "
        "resolution tags in centimeters or inches"
        if fmt in ("tiff", "slide", "dicom")
        else f"a {fmt} file carries none here; only TIFF and slide files do"
    )
    return (
        f"{path}: microns per pixel were asked for (patch_mpp / low_mpp) but "
        f"the file has no resolution metadata ({where}): give levels "
        "instead (leave out --patch-mpp and --low-mpp: patches at full "
        "resolution, the low view at --low-scale)"
    )


def _plan_levels(path, fmt, levels, low_scale, patch_mpp, low_mpp, mpp):
    """The ``_Levels`` of an image of pyramid ``levels`` whose level 0 has
    ``mpp`` (None: unknown) for the requested ``patch_mpp`` / ``low_mpp``
    (None: full resolution / ``low_scale``)."""
    level0 = tuple(levels[0])
    if patch_mpp is None and low_mpp is None:
        low_shape = low_view_shape(level0, low_scale)
        return _Levels(0, level0, None, (1.0, 1.0), low_shape, None)
    if mpp is None:
        raise SourceError(_no_mpp_message(path, fmt))
    patch_level, factor = 0, (1.0, 1.0)
    if patch_mpp is not None:
        try:
            patch_level, factor = choose_level(level_mpps(mpp, levels), patch_mpp)
        except ValueError as error:
            raise SourceError(
                f"{path}: cannot read patches at patch_mpp={patch_mpp}: {error}"
            ) from None
    patch_shape = resized_shape(levels[patch_level], factor)
    steps = None if factor == (1.0, 1.0) else tuple(1 / f for f in factor)
    downsample = tuple(
        a / b / f for a, b, f in zip(level0, levels[patch_level], factor)
    )
    if low_mpp is None:
        low_shape = low_view_shape(patch_shape, low_scale)
    else:
        low_shape = resized_shape(level0, tuple(m / low_mpp for m in mpp))
    if any(lo > p for lo, p in zip(low_shape, patch_shape)):
        raise SourceError(
            f"{path}: low_mpp={low_mpp} makes a low view {low_shape} larger than "
            f"the patch level {patch_shape} (level 0 has {mpp[1]:.4g} microns "
            "per pixel): the low view must be coarser than the patches"
        )
    patch_mpps = tuple(m * d for m, d in zip(mpp, downsample))
    return _Levels(patch_level, patch_shape, steps, downsample, low_shape, patch_mpps)


def _stored_source(path, fmt, low_scale, patch_mpp=None, low_mpp=None):
    """``(inner, channels, pyramid, levels)``: a source over the stored
    values of the patch level, the channels to keep, ``(level,
    level_shape)`` of the pyramid level the low view comes from (None:
    downscale the patch level) and the ``_Levels`` read."""
    physical = patch_mpp is not None or low_mpp is not None
    if fmt in ("png", "jpeg", "npy", "zarr") and physical:
        raise SourceError(_no_mpp_message(path, fmt))
    if fmt in ("png", "jpeg"):
        info, convert = _pillow_header(path, fmt)
        high = _PillowArray(path, info.shape, info.dtype, convert)
        inner = ArraySource(high, low=np.zeros((1, 1, info.shape[-1]), info.dtype))
        inner.name = path
        plan = _plan_levels(path, fmt, [info.shape[:2]], low_scale, None, None, None)
        return inner, info.shape[-1], None, plan
    if fmt in ("npy", "zarr"):
        array = _npy(path) if fmt == "npy" else _zarr(path)
        placeholder = np.zeros((1, 1, array.shape[-1]), array.dtype)
        inner = ArraySource(array, low=placeholder, name=path)
        plan = _plan_levels(path, fmt, [array.shape[:2]], low_scale, None, None, None)
        return inner, array.shape[-1], None, plan
    if fmt == "tiff":
        tif, series, levels, channels, _, tiled = _tiff_series(path)
        try:
            mpp = tiff_mpp(tif) if physical else None
            # An untiled file is read from level 0 only.
            read_levels = levels if tiled else levels[:1]
            plan = _plan_levels(
                path, fmt, read_levels, low_scale, patch_mpp, low_mpp, mpp
            )
        except BaseException:
            tif.close()
            raise
        level = max(plan.patch_level, _pyramid_level(read_levels, plan.low_shape))
        if tiled:
            tif.close()
            inner = TiffSource(path, low_level=level, patch_level=plan.patch_level)
        else:
            _, zarr = import_tiff_libraries(path)
            array = _image_array(path, zarr.open(series.aszarr(level=0), mode="r"))
            placeholder = np.zeros((1, 1, array.shape[-1]), array.dtype)
            inner = _ClosingArraySource(array, placeholder, path, tif)
        pyramid = (level, levels[level]) if level > plan.patch_level else None
        return inner, _kept_channels(channels), pyramid, plan
    if fmt == "dicom":
        probe = DicomSource(path, low_level=None)
        levels, mpp = probe.levels, probe.mpp
        probe.close()
    else:
        library = _slide_library()
        probe = _open_slide(path, library, None)
        levels, properties = probe.levels, probe.properties
        probe.close()
        mpp = property_mpp(properties)
    mpp = mpp if physical else None
    plan = _plan_levels(path, fmt, levels, low_scale, patch_mpp, low_mpp, mpp)
    level = max(plan.patch_level, _pyramid_level(levels, plan.low_shape))
    own_low = level if level > plan.patch_level else None
    if fmt == "dicom":
        inner = DicomSource(path, own_low, patch_level=plan.patch_level)
    else:
        inner = _open_slide(path, library, own_low, plan.patch_level)
    pyramid = (level, levels[level]) if own_low is not None else None
    return inner, _kept_channels(inner.shape[-1]), pyramid, plan


class _ClosingArraySource(ArraySource):
    """An ``ArraySource`` that closes a file with itself."""

    def __init__(self, high, low, name, file):
        super().__init__(high, low=low, name=name)
        self._file = file

    def close(self):
        super().close()
        self._file.close()


def _pyramid_level(levels, target):
    """The finest level not coarser than ``target`` on any axis."""
    best = 0
    for index, shape in enumerate(levels):
        if all(s >= t for s, t in zip(shape, target)):
            best = index
    return best


def open_image(path, low_scale, cache_dir=None, patch_mpp=None, low_mpp=None):
    """Open an image file as a patch source of float32 values in [0, 1].

    Args:
        path: str or path-like, a file (or zarr directory) of ``FORMATS``.
        low_scale: float in (0, 1], the low view's size relative to the
            patches' resolution; each side is ``max(1, round(side *
            low_scale))`` (ignored with ``low_mpp``).
        cache_dir: str or None, where downscaled low views are cached as
            ``.npz`` (None: computed at every open). Files with a pyramid
            level at least as fine as the low view read that level instead.
        patch_mpp: optional float > 0, the microns per pixel patches are
            read at (None: the full resolution, level 0). Needs a TIFF or
            slide file with resolution metadata.
        low_mpp: optional float >= ``patch_mpp``, the microns per pixel of
            the low view (None: ``low_scale``).

    Returns:
        ``ImageSource``: ``shape`` ``(H, W, C)`` (at ``patch_mpp`` when
        given), ``low()`` ``(h, w, C)``, both float32 in [0, 1];
        ``low_from`` says where the low view came from, ``downsample`` how
        patch pixels map to level 0, ``mpp`` the patches' microns per pixel
        (when asked for).

    Raises:
        FileNotFoundError: no such file.
        SourceError: unknown format (the message lists the accepted ones),
            unreadable or corrupt file, unsupported dtype, float values
            outside [0, 1]; mpp asked for a file without resolution
            metadata, or finer than the file was scanned at.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from PIL import Image
        >>> from ats.data import open_image
        >>> path = os.path.join(tempfile.mkdtemp(), "photo.png")
        >>> Image.fromarray(np.full((300, 400), 255, "uint8")).save(path)
        >>> source = open_image(path, low_scale=0.1)
        >>> source.shape, source.low().shape, float(source.low().max())
        ((300, 400, 1), (30, 40, 1), 1.0)
        >>> source.read([[10, 20]], (64, 64)).dtype
        dtype('float32')
    """
    path = os.fspath(path)
    low_scale = checks.real("low_scale", low_scale, where="open_image")
    if not 0 < low_scale <= 1:
        checks.fail("low_scale", "a float in (0, 1]", low_scale, "open_image")
    patch_mpp, low_mpp = checked_mpps(patch_mpp, low_mpp, "open_image")
    fmt = image_format(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    inner, channels, pyramid, plan = _stored_source(
        path, fmt, low_scale, patch_mpp, low_mpp
    )
    try:
        scale = _scale_of(path, inner.dtype)
        low, low_from = _low_view(
            path, inner, channels, pyramid, plan, scale, cache_dir
        )
        _check_range(path, low, inner.dtype)
        return ImageSource(
            inner,
            low,
            scale,
            channels,
            fmt,
            low_from,
            spatial_shape=plan.patch_shape,
            steps=plan.steps,
            downsample=plan.downsample,
            mpp=plan.mpp,
        )
    except BaseException:
        inner.close()
        raise


def _low_view(path, inner, channels, pyramid, plan, scale, cache_dir):
    """``(low float32 (h, w, C) in [0, 1], low_from)``: a pyramid level
    resized to ``plan.low_shape``, or the patch level (``inner``)
    downscaled."""
    target = plan.low_shape
    if pyramid is not None:
        level, _ = pyramid
        stored = np.asarray(inner.low())[..., :channels]
        low = stored if stored.shape[:2] == target else area_resize(stored, target)
        return np.asarray(low, dtype=np.float64) / scale, f"pyramid level {level}"
    cache_file = None
    if cache_dir is not None:
        cache_file = _cache_file(cache_dir, path, target, plan.patch_level)
        low = _load_cached(cache_file, target)
        if low is not None:
            return low, "cache"
    try:
        low = (
            _downscale(
                _window_reader(inner, channels),
                inner.spatial_shape,
                channels,
                target,
            )
            / scale
        )
    except SourceError:
        raise
    except Exception as error:
        raise SourceError(
            f"{path}: cannot read the image: {type(error).__name__}: {error}"
        ) from error
    low = low.astype(np.float32)
    if cache_file is not None:
        _save_cached(cache_file, low)
    return low, "computed"


def _window_reader(inner, channels):
    """``window(start, stop)`` over ``inner``'s stored values; a PNG/JPEG
    is decoded once here (whatever the decoded-image cache holds)."""
    high = getattr(inner, "_high", None)
    if isinstance(high, _PillowArray):
        whole = high._decode()[..., :channels]
        return lambda start, stop: whole[start[0] : stop[0], start[1] : stop[1]]
    return lambda start, stop: np.asarray(inner._read(start, stop))[..., :channels]


def _check_range(path, low, dtype):
    if np.issubdtype(np.dtype(dtype), np.floating) and low.size:
        lo, hi = float(np.min(low)), float(np.max(low))
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-6 or hi > 1 + 1e-6:
            raise SourceError(
                f"{path}: float images must hold values in [0, 1], got values "
                f"from {lo} to {hi} (in the low view)"
            )
