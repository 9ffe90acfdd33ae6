"""OpenSlide-compatible whole-slide images as patch sources.

``SlideSource`` reads slides through the OpenSlide API: with ``tiffslide``
(pure Python, on tifffile and zarr; the default) or with ``openslide-python``
(the OpenSlide C library, e.g. from the ``openslide-bin`` wheel). Both are
optional: ``pip install 'attention-sampling[gigapixel]'`` installs them. The
low-resolution view is a whole pyramid level; patches are read from level 0,
OpenSlide's full resolution. Images are ``(height, width, C)``: tiffslide
returns the file's own samples (1 for a grey image, 3 for RGB), openslide
RGB (its alpha channel dropped).
"""

import os

import numpy as np

from .. import checks
from .sources import PatchSource, SourceError, check_level_shapes

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


class SlideSource(PatchSource):
    """A whole-slide image read through tiffslide or OpenSlide.

    Args:
        path: str or path-like, the slide file.
        low_level: int, the pyramid level of the low-resolution view (read
            whole when the source is opened).
        scale: optional float or per-axis tuple, the declared size of the low
            view relative to level 0; a level whose shape is more than one
            pixel off is an error.
        library: ``"tiffslide"`` (default) or ``"openslide"``.

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

    def __init__(self, path, low_level, scale=None, library="tiffslide"):
        path = os.fspath(path)
        checks.choice("library", library, SLIDE_LIBRARIES, where="SlideSource")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such slide file")
        try:
            self._slide = _open_slide(path, library)
            # OpenSlide sizes are (width, height); ours (height, width).
            level_shapes = [(h, w) for w, h in self._slide.level_dimensions]
        except ImportError:
            raise
        except Exception as error:
            raise SourceError(
                f"{path}: {library} cannot open it as a slide: "
                f"{type(error).__name__}: {error}"
            ) from error
        self._library = library
        try:
            low, high = check_level_shapes(path, level_shapes, low_level, 0, scale)
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
        self._low = x_low

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

    def low(self):
        return self._low

    def _read(self, start, stop):
        return self._region(start, 0, tuple(b - a for a, b in zip(start, stop)))

    def close(self):
        super().close()
        self._slide.close()
