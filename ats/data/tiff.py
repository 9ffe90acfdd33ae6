"""Pyramidal tiled TIFF files as patch sources (tifffile + zarr).

The low-resolution view is a whole pyramid level; patches are read from
another level (level 0, the full resolution, by default) through tifffile's
zarr store, which decodes only the tiles a patch overlaps. Pyramids stored as
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

from .sources import PatchSource, SourceError, check_level_shapes

__all__ = ["TiffSource"]


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


def _level_array(zarr, series, level):
    """A read-only zarr array over one pyramid level of a tifffile series."""
    return zarr.open(series.aszarr(level=level), mode="r")


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
        super().__init__(path, shape, low_shape, self._arrays[patch_level].dtype)
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
        self._arrays = {
            level: _level_array(zarr, tiff_series, level)
            for level in {low_level, patch_level}
        }
        channels = shapes[0][-1]
        return (*low, channels), (*high, channels)

    def low(self):
        """The whole ``low_level``, ``(h, w, C)``; read once, then cached."""
        if self._low is None:
            with self._lock:
                try:
                    low = np.asarray(self._arrays[self.low_level][...])
                except Exception as error:
                    raise SourceError(
                        f"{self.path}: cannot read pyramid level "
                        f"{self.low_level}: {type(error).__name__}: "
                        f"{error}"
                    ) from error
            self._low = low.reshape(self.low_shape)
        return self._low

    def _read(self, start, stop):
        window = self._arrays[self.patch_level][start[0] : stop[0], start[1] : stop[1]]
        return np.asarray(window).reshape(
            stop[0] - start[0], stop[1] - start[1], self.shape[-1]
        )

    def close(self):
        super().close()
        self._file.close()
