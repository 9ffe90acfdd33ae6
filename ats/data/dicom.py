"""DICOM whole-slide images (VL Whole Slide Microscopy) as patch sources.

``DicomSource`` reads a DICOM WSI through ``wsidicom`` (optional: ``pip
install 'attention-sampling[dicom]'``): a folder holding the slide's
instances (one ``.dcm`` file per pyramid level, as scanners and
``wsidicom`` write them), or one instance file. Levels are numbered finest
first, as in ``TiffSource`` and ``SlideSource``; the low-resolution view is a
whole level, patches are read from another (level 0 by default). Images are
``(height, width, 3)`` RGB uint8.
"""

import os

import numpy as np

from .sources import PyramidSource, SourceError

__all__ = ["DicomSource"]


def _import_wsidicom(path):
    try:
        import wsidicom
    except ImportError as error:
        raise ImportError(
            f"reading the DICOM slide {path} needs wsidicom: pip install "
            f"'attention-sampling[dicom]' ({error})"
        ) from error
    return wsidicom


class DicomSource(PyramidSource):
    """A DICOM whole-slide image read through ``wsidicom``.

    Args:
        path: str or path-like, the slide's folder (or one instance file).
        low_level: int, the level of the low-resolution view (read whole
            when the source is opened), or None for the coarsest.
        scale: optional float or per-axis tuple, the declared size of the low
            view relative to the patch level; a level whose shape is more
            than one pixel off is an error.
        patch_level: int, the level patches are read from (0 by default).

    Attributes:
        levels: list of the levels' ``(h, w)``, finest first.
        mpp: ``(mpp_y, mpp_x)`` microns per pixel of level 0, or None.

    Raises:
        FileNotFoundError: no such file or folder.
        ImportError: wsidicom is not installed.
        SourceError: wsidicom cannot open it, the level is missing or its
            shape does not match ``scale``.

    Example:
        >>> from ats.data.dicom import DicomSource
        >>> DicomSource("no/such/slide", low_level=None)
        Traceback (most recent call last):
        ...
        FileNotFoundError: no/such/slide: no such DICOM slide (file or folder)
    """

    def __init__(self, path, low_level=None, scale=None, patch_level=0):
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such DICOM slide (file or folder)")
        wsidicom = _import_wsidicom(path)
        try:
            self._slide = wsidicom.WsiDicom.open(path)
            pyramid = list(self._slide.levels)
            level_shapes = [(lv.size.height, lv.size.width) for lv in pyramid]
            mpp = self._slide.mpp
        except Exception as error:
            raise SourceError(
                f"{path}: wsidicom cannot open it as a DICOM whole-slide "
                f"image: {type(error).__name__}: {error}"
            ) from error
        # wsidicom addresses a level by its scale exponent (log2 of its
        # downsample), not by its place in the list.
        self._scale_levels = [lv.level for lv in pyramid]
        low_level = len(level_shapes) - 1 if low_level is None else low_level
        self._init_levels(path, level_shapes, low_level, patch_level, scale)
        self.mpp = None if mpp is None else (float(mpp.height), float(mpp.width))

    def _region(self, start, level, shape):
        """``(h, w, 3)`` pixels of ``level`` from its pixel ``start``
        ``(row, col)``."""
        region = self._slide.read_region(
            (int(start[1]), int(start[0])),
            self._scale_levels[level],
            (int(shape[1]), int(shape[0])),
            as_array=True,
        )
        return np.asarray(region)[..., :3]

    def _read(self, start, stop):
        size = tuple(b - a for a, b in zip(start, stop))
        try:
            return self._region(start, self.patch_level, size)
        except Exception as error:
            raise OSError(
                f"wsidicom cannot read level {self.patch_level}, pixels rows "
                f"{start[0]} to {stop[0]}, columns {start[1]} to {stop[1]}: "
                f"{type(error).__name__}: {error}"
            ) from error
