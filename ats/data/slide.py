"""OpenSlide-compatible whole-slide images as patch sources.

``SlideSource`` reads slides through the OpenSlide API: with ``tiffslide``
(pure Python, on tifffile and zarr; the default) or with ``openslide-python``
(the OpenSlide C library, e.g. from the ``openslide-bin`` wheel). Both are
optional: ``pip install 'attention-sampling[gigapixel]'`` installs them. The
low-resolution view is a whole pyramid level; patches are read from another
level (level 0, OpenSlide's full resolution, by default). Images are
``(height, width, C)``: tiffslide returns the file's own samples (1 for a
grey image, 3 for RGB), openslide RGB (its alpha channel dropped).
"""

import os

import numpy as np

from .. import checks
from .sources import PyramidSource, SourceError

__all__ = ["SlideSource", "SLIDE_LIBRARIES"]

SLIDE_LIBRARIES = ("tiffslide", "openslide")
"""The libraries ``SlideSource`` can read slides with."""


def _open_slide(path, library):
    if library == "tiffslide":
        try:
            import tiffslide
        except ImportError as error:
            raise ImportError(
                f"reading {path} with library='tiffslide' needs tiffslide: "
                "pip install 'attention-sampling[gigapixel]'"
            ) from error
        return tiffslide.TiffSlide(path)
    try:
        import openslide
    except ImportError as error:
        raise ImportError(
            f"reading {path} with library='openslide' needs openslide-python "
            "and the OpenSlide library: pip install openslide-python "
            "openslide-bin"
        ) from error
    return openslide.OpenSlide(path)


class SlideSource(PyramidSource):
    """A whole-slide image read through tiffslide or OpenSlide.

    Args:
        path: str or path-like, the slide file.
        low_level: int, the pyramid level of the low-resolution view (read
            whole when the source is opened).
        scale: optional float or per-axis tuple, the declared size of the low
            view relative to the patch level; a level whose shape is more
            than one pixel off is an error.
        library: ``"tiffslide"`` (default) or ``"openslide"``.
        patch_level: int, the level patches are read from (0 by default);
            patch corners are in that level's pixels.

    Attributes:
        levels: list of the levels' ``(h, w)``, finest first.
        properties: dict, the slide's OpenSlide properties (e.g.
            ``openslide.mpp-x``, or ``tiffslide.mpp-x`` with tiffslide).

    Raises:
        FileNotFoundError: the file does not exist.
        SourceError: the library cannot open it, the level is missing, its
            shape does not match ``scale`` or it cannot be read.

    Example:
        A pyramidal TIFF (512 and 128 pixels a side) opened as a slide:

        >>> import os, tempfile
        >>> import numpy as np
        >>> import tifffile
        >>> from ats.data import SlideSource
        >>> image = np.zeros((512, 512, 3), "uint8")
        >>> path = os.path.join(tempfile.mkdtemp(), "slide.tif")
        >>> with tifffile.TiffWriter(path) as tif:
        ...     tif.write(image, tile=(128, 128), subifds=1)
        ...     tif.write(image[::4, ::4], tile=(128, 128), subfiletype=1)
        >>> source = SlideSource(path, low_level=1)
        >>> source.read([[100, 200]], (64, 64)).shape
        (1, 64, 64, 3)
    """

    thread_safe = True  # OpenSlide and tiffslide handles serve several threads

    def __init__(self, path, low_level, scale=None, library="tiffslide", patch_level=0):
        path = os.fspath(path)
        checks.choice("library", library, SLIDE_LIBRARIES, where="SlideSource")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such slide file")
        try:
            self._slide = _open_slide(path, library)
            # OpenSlide sizes are (width, height); ours (height, width).
            level_shapes = [(h, w) for w, h in self._slide.level_dimensions]
            properties = dict(self._slide.properties)
        except ImportError:
            raise
        except Exception as error:
            raise SourceError(
                f"{path}: {library} cannot open it as a slide: "
                f"{type(error).__name__}: {error}"
            ) from error
        self._library = library
        high = self._init_levels(path, level_shapes, low_level, patch_level, scale)
        self.properties = properties
        # Level-0 pixels per patch-level pixel, per axis (OpenSlide's
        # read_region takes its location in level-0 pixels).
        self._downsample = tuple(a / b for a, b in zip(level_shapes[0], high))

    def _region(self, start, level, shape):
        """``(h, w, C)`` pixels of ``level`` from level-0 ``start``
        ``(row, col)``."""
        location, size = (start[1], start[0]), (shape[1], shape[0])
        if self._library == "tiffslide":
            return np.asarray(
                self._slide.read_region(location, level, size, as_array=True)
            )
        rgba = np.asarray(self._slide.read_region(location, level, size))
        return rgba[..., :3]

    def _read(self, start, stop):
        origin = tuple(int(round(a * d)) for a, d in zip(start, self._downsample))
        size = tuple(b - a for a, b in zip(start, stop))
        try:
            return self._region(origin, self.patch_level, size)
        except Exception as error:
            raise OSError(
                f"{self._library} cannot read level {self.patch_level}, pixels "
                f"rows {start[0]} to {stop[0]}, columns {start[1]} to "
                f"{stop[1]} (level-0 origin {origin}): "
                f"{type(error).__name__}: {error}"
            ) from error
