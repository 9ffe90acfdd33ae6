"""Pyramidal tiled TIFF files as patch sources (tifffile + zarr).

The low-resolution view is a whole pyramid level (read through tifffile's
zarr store); patches are read from another level (level 0, the full
resolution, by default) by decoding only the tiles a patch overlaps, with
tifffile's decoders (imagecodecs, which release the GIL: reads run in
parallel on the thread pool of ``ats.data.sources.read_many``). A tile whose
bytes fail to decode raises ``DamagedTileError`` naming the level, the tile
(index, row and column) and its pixels; the patch read that met it raises
``PatchReadError`` naming the file and the patch. Pyramids stored as
SubIFDs (OME-TIFF style) and as reduced-resolution pages (generic/OpenSlide
style) both work; levels are numbered finest first, as in tifffile and
OpenSlide.

Everything that can be checked when the file is opened is checked then: the
file exists, is a TIFF whose structure parses without damage, has the
requested levels, every tile of them lies inside the file (it is not
truncated) and the low level's shape matches the declared ``scale``.
"""

import logging
import os

import numpy as np

from .resolution import slide_mpp
from .sources import PatchSource, SourceError, check_level_shapes

__all__ = ["TiffSource", "DamagedTileError", "tiff_mpp"]


class DamagedTileError(OSError):
    """A tile of a TIFF level could not be decoded (damaged bytes).

    The message names the level, the tile's index, row and column in the
    level's grid of tiles, its pixels in the level and its bytes in the file.
    """


def import_tiff_libraries(path):
    try:
        import tifffile
        import zarr
    except ImportError as error:
        raise ImportError(
            f"reading {path} needs tifffile, zarr and imagecodecs: pip "
            f"install 'attention-sampling[gigapixel]' ({error})"
        ) from error
    return tifffile, zarr


def tiff_mpp(tif, series=0):
    """Level 0's microns per pixel from a TIFF file's metadata: an Aperio
    description, OME-XML or resolution tags (:func:`ats.data.resolution.
    slide_mpp`).

    Args:
        tif: an open ``tifffile.TiffFile``.
        series: int, the image series whose level 0 is described.

    Returns:
        ``(mpp_y, mpp_x)`` floats, or None when the file does not say.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> import tifffile
        >>> from ats.data.tiff import tiff_mpp
        >>> path = os.path.join(tempfile.mkdtemp(), "slide.tif")
        >>> tifffile.imwrite(path, np.zeros((64, 64), "uint8"),
        ...                  resolution=(20000, 20000), resolutionunit="CENTIMETER")
        >>> with tifffile.TiffFile(path) as tif:
        ...     tiff_mpp(tif)
        (0.5, 0.5)
    """
    page = tif.series[series].levels[0].keyframe
    tags = page.tags

    def value(name):
        tag = tags.get(name)
        return None if tag is None else tag.value

    return slide_mpp(
        description=page.description,
        ome_xml=tif.ome_metadata,
        resolution=(
            value("XResolution"),
            value("YResolution"),
            value("ResolutionUnit"),
        ),
    )


def _level_array(zarr, series, level):
    """A read-only zarr array over one pyramid level of a tifffile series."""
    return zarr.open(series.aszarr(level=level), mode="r")


class _TiledLevel:
    """One tiled pyramid level, read window by window, tile by tile.

    Args:
        file: the open ``tifffile.TiffFile``. Tiles are read with
            ``os.pread`` on a descriptor of their own where the system has
            it (no shared file position between the reading threads), else
            under the file handle's lock; decoding runs outside it.
        page: the level's ``TiffPage`` (or ``TiffFrame``), tiled, 2-D with
            interleaved samples.
        level: int, the level's index (for error messages).
    """

    def __init__(self, file, page, level):
        self.handle = file.filehandle
        self.handle.set_lock(True)
        self.keyframe = page.keyframe
        # Read once, here: tifffile may load tag values lazily, from the
        # shared handle, which reading threads must not do.
        self.offsets = np.array(page.dataoffsets, np.int64)
        self.counts = np.array(page.databytecounts, np.int64)
        self.descriptor = None
        if hasattr(os, "pread") and self.handle.is_file:
            self.descriptor = os.open(self.handle.path, os.O_RDONLY)
        self.level = level
        self.tile = (self.keyframe.tilelength, self.keyframe.tilewidth)
        self.shape = (self.keyframe.imagelength, self.keyframe.imagewidth)
        self.samples = self.keyframe.samplesperpixel
        self.grid = tuple(-(-n // t) for n, t in zip(self.shape, self.tile))
        self.decode_args = {"_fullsize": True}
        if self.keyframe.jpegtables is not None:
            self.decode_args["jpegtables"] = self.keyframe.jpegtables
        if getattr(self.keyframe, "jpegheader", None) is not None:
            self.decode_args["jpegheader"] = self.keyframe.jpegheader

    def tile_array(self, row, column):
        """The decoded tile at ``(row, column)`` of the grid, ``(tile_h,
        tile_w, samples)`` (zeros for a tile the file does not store)."""
        index = row * self.grid[1] + column
        offset, count = int(self.offsets[index]), int(self.counts[index])
        if offset == 0 or count == 0:
            return np.zeros((*self.tile, self.samples), self.keyframe.dtype)
        data = self._bytes(offset, count)
        try:
            decoded = self.keyframe.decode(data, index, **self.decode_args)[0]
            return np.asarray(decoded).reshape(*self.tile, self.samples)
        except Exception as error:
            (y0, x0), (th, tw) = (row * self.tile[0], column * self.tile[1]), self.tile
            raise DamagedTileError(
                f"level {self.level}, tile {index} (row {row}, column {column} "
                f"of {self.grid[0]}x{self.grid[1]} tiles; pixels rows {y0} to "
                f"{min(y0 + th, self.shape[0])}, columns {x0} to "
                f"{min(x0 + tw, self.shape[1])}; {count} bytes at offset "
                f"{offset}) cannot be decoded: {type(error).__name__}: {error}"
            ) from error

    def _bytes(self, offset, count):
        """``count`` bytes of the file from ``offset``, from any thread."""
        if self.descriptor is not None:
            return os.pread(self.descriptor, count, offset)
        with self.handle.lock:
            self.handle.seek(offset)
            return self.handle.read(count)

    def close(self):
        """Close the level's own descriptor (the file is the caller's)."""
        descriptor, self.descriptor = getattr(self, "descriptor", None), None
        if descriptor is not None:
            os.close(descriptor)

    # A source dropped without close() must not keep a descriptor open.
    __del__ = close

    def window(self, start, stop):
        """Pixels ``[start, stop)`` of the level, ``(h, w, samples)``,
        decoding only the tiles they overlap."""
        out = np.empty(
            (stop[0] - start[0], stop[1] - start[1], self.samples), self.keyframe.dtype
        )
        (th, tw) = self.tile
        for row in range(start[0] // th, (stop[0] - 1) // th + 1):
            for column in range(start[1] // tw, (stop[1] - 1) // tw + 1):
                tile = self.tile_array(row, column)
                y0, x0 = max(start[0], row * th), max(start[1], column * tw)
                y1 = min(stop[0], (row + 1) * th)
                x1 = min(stop[1], (column + 1) * tw)
                out[y0 - start[0] : y1 - start[0], x0 - start[1] : x1 - start[1]] = (
                    tile[
                        y0 - row * th : y1 - row * th,
                        x0 - column * tw : x1 - column * tw,
                    ]
                )
        return out


class _TifffileWarnings(logging.Handler):
    """Collects what tifffile logs while it parses a file."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _spatial_and_channels(path, series, level_shapes):
    """Map the series' axes to ``(*spatial, C)`` or raise."""
    axes = series.axes
    if axes == "YX":
        return [(*s, 1) for s in level_shapes]
    if axes == "YXS":
        return [tuple(s) for s in level_shapes]
    raise SourceError(
        f"{path}: the image has axes {axes!r}; a TiffSource reads 2-D images "
        "with axes 'YX' (one channel) or 'YXS' (interleaved samples)"
    )


class TiffSource(PatchSource):
    """A pyramidal tiled TIFF: low view from one level, patches from another.

    Patch reads decode only the tiles a patch overlaps and may run in
    several threads at once (``thread_safe``); a damaged tile makes the read
    raise ``PatchReadError`` naming the file, the patch, the level and the
    tile.

    Args:
        path: str or path-like, the TIFF file.
        low_level: int, the pyramid level of the low-resolution view.
        patch_level: int, the level patches are read from (0, the full
            resolution, by default).
        scale: optional float or per-axis tuple, the declared size of the low
            view relative to the patch level; a level whose shape is more
            than one pixel off is an error.
        series: int, which image series of the file to read.

    Raises:
        FileNotFoundError: the file does not exist.
        SourceError: not a readable TIFF, damaged or truncated structure,
            missing level, shape not matching ``scale``, untiled level 0.

    Example:
        A two-level pyramid (512 and 128 pixels a side) written with
        ``tifffile``, then read patch by patch:

        >>> import os, tempfile
        >>> import numpy as np
        >>> import tifffile
        >>> from ats.data import TiffSource
        >>> image = np.arange(512 * 512, dtype="uint32").reshape(512, 512)
        >>> image = (image % 251).astype("uint8")
        >>> path = os.path.join(tempfile.mkdtemp(), "slide.tif")
        >>> with tifffile.TiffWriter(path) as tif:
        ...     tif.write(image, tile=(128, 128), subifds=1)
        ...     tif.write(image[::4, ::4], tile=(128, 128), subfiletype=1)
        >>> source = TiffSource(path, low_level=1, scale=1 / 4)
        >>> source.low().shape                          # (h, w, C) in memory
        (128, 128, 1)
        >>> source.read([[100, 200]], (64, 64)).shape
        (1, 64, 64, 1)
    """

    thread_safe = True

    def __init__(self, path, low_level, patch_level=0, scale=None, series=0):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such TIFF file")
        tifffile, zarr = import_tiff_libraries(path)
        logger = logging.getLogger("tifffile")
        warnings = _TifffileWarnings()
        logger.addHandler(warnings)
        try:
            self._file = tifffile.TiffFile(path)
        except Exception as error:
            raise SourceError(
                f"{path}: not a readable TIFF file: {type(error).__name__}: {error}"
            ) from error
        try:
            low_shape, shape = self._open(
                path, zarr, series, low_level, patch_level, scale, warnings
            )
        except BaseException:
            self._file.close()
            raise
        finally:
            logger.removeHandler(warnings)
        super().__init__(path, shape, low_shape, self._low_array.dtype)
        self.path = path
        self.low_level = low_level
        self.patch_level = patch_level
        self._low = None

    def _open(self, path, zarr, series, low_level, patch_level, scale, warnings):
        """Parse and check the file; return the two levels' shapes."""
        try:
            if not 0 <= series < len(self._file.series):
                raise SourceError(
                    f"{path}: has {len(self._file.series)} image series, so "
                    f"`series`={series} does not exist"
                )
            tiff_series = self._file.series[series]
            levels = tiff_series.levels
            level_shapes = [level.shape for level in levels]
        except SourceError:
            raise
        except Exception as error:
            raise SourceError(
                f"{path}: corrupt TIFF structure: {type(error).__name__}: {error}"
            ) from error
        if warnings.messages:
            raise SourceError(
                f"{path}: corrupt or truncated TIFF (tifffile reports: "
                f"{'; '.join(warnings.messages[:3])})"
            )
        shapes = _spatial_and_channels(path, tiff_series, level_shapes)
        low, high = check_level_shapes(
            path, [s[:-1] for s in shapes], low_level, patch_level, scale
        )
        size = os.path.getsize(path)
        for level in {low_level, patch_level}:
            for page in levels[level].pages:
                ends = np.add(page.dataoffsets, page.databytecounts)
                if len(ends) and ends.max() > size:
                    raise SourceError(
                        f"{path}: truncated: a tile of level {level} ends at "
                        f"byte {int(ends.max())} but the file has {size} "
                        "bytes"
                    )
        if not levels[patch_level].keyframe.is_tiled:
            raise SourceError(
                f"{path}: level {patch_level} is stored in strips, not tiles;"
                " reading a patch would decode whole rows of the image: "
                "rewrite it tiled (e.g. tifffile.imwrite(..., tile=(256, "
                "256)))"
            )
        self._low_array = _level_array(zarr, tiff_series, low_level)
        self._tiles = _TiledLevel(self._file, levels[patch_level].pages[0], patch_level)
        channels = shapes[0][-1]
        return (*low, channels), (*high, channels)

    def low(self):
        """The whole ``low_level``, ``(h, w, C)``; read once, then cached."""
        if self._low is None:
            with self._lock:
                try:
                    low = np.asarray(self._low_array[...])
                except Exception as error:
                    raise SourceError(
                        f"{self.path}: cannot read pyramid level "
                        f"{self.low_level}: {type(error).__name__}: "
                        f"{error}"
                    ) from error
            self._low = low.reshape(self.low_shape)
        return self._low

    def _read(self, start, stop):
        return self._tiles.window(start, stop)

    def close(self):
        super().close()
        self._tiles.close()
        self._file.close()
