"""The attention map as a TIFF aligned with the image it was computed on.

* :func:`attention_raster`: the attention map's cells painted on a pixel
  grid (e.g. the low view's: each pixel gets the attention of the cell its
  centre falls in).
* :func:`write_heatmap_tiff`: that grid as a single-channel float32 TIFF
  whose pixel ``(i, j)`` covers level-0 pixels ``[i * dy, (i + 1) * dy)``
  and ``[j * dx, (j + 1) * dx)`` (``downsample = (dy, dx)``), stated in
  its resolution tags and in a JSON description, so that it overlays the
  full-resolution image.

The resolution tags: with the image's microns per pixel ``mpp``, pixels
per centimetre (``10,000 / (mpp * downsample)``, unit ``CENTIMETER``);
without, heatmap pixels per level-0 pixel (``1 / downsample``, unit
``NONE``). The description is ``{"ats_heatmap": {"downsample": [dy, dx],
"level0_shape": [H, W], "mpp": ..., "values": ...}}``.

Example:
    >>> import numpy as np
    >>> from ats.training.slide_heatmap import attention_raster
    >>> attention_raster([[1.0, 2.0]], origin=(0, 0), cell=2, shape=(3, 5))
    array([[1., 1., 2., 2., 0.],
           [1., 1., 2., 2., 0.],
           [0., 0., 0., 0., 0.]], dtype=float32)
"""

import io
import json
from pathlib import Path

import numpy as np

from .. import checks
from .qupath import _attention_map, _origin, _pair
from .run import atomic_write

__all__ = ["attention_raster", "write_heatmap_tiff", "read_heatmap_description"]


def attention_raster(attention, origin, cell, shape):
    """The attention of the cell each pixel's centre falls in.

    Cell ``(i, j)`` covers the pixels from ``origin + (i, j) * cell`` to
    ``origin + (i + 1, j + 1) * cell`` (the layout of
    ``ats.experiments.your_data.look``, in low-view pixels).

    Args:
        attention: ``(h', w')`` attention map (finite, >= 0).
        origin: ``(y, x)``, cell ``(0, 0)``'s top-left corner in pixels.
        cell: a positive number or ``(y, x)`` pair, the cells' side.
        shape: ``(h, w)`` the pixel grid.

    Returns:
        ``(h, w)`` float32; 0 where a pixel's centre is in no cell.
    """
    where = "attention_raster"
    attention = _attention_map(attention, where)
    origin = _origin(origin, where)
    cell = _pair("cell", cell, where)
    shape = checks.int_tuple("shape", shape, length=2, where=where)
    # The cell of each row's and each column's pixel centre.
    rows, columns = (
        np.floor((np.arange(n) + 0.5 - o) / c).astype(np.int64)
        for n, o, c in zip(shape, origin, cell)
    )
    keep_rows = (rows >= 0) & (rows < attention.shape[0])
    keep_columns = (columns >= 0) & (columns < attention.shape[1])
    raster = np.zeros(shape, np.float32)
    raster[np.ix_(keep_rows, keep_columns)] = attention[
        np.ix_(rows[keep_rows], columns[keep_columns])
    ]
    return raster


def write_heatmap_tiff(path, raster, downsample, mpp=None):
    """Write a heatmap as a float32 TIFF that overlays level 0.

    Args:
        path: str or path-like, the ``.tif`` file to (over)write.
        raster: ``(h, w)`` finite values (e.g. :func:`attention_raster`).
        downsample: a number or ``(dy, dx)`` pair, level-0 pixels per
            heatmap pixel.
        mpp: optional number or ``(y, x)`` pair, the microns per level-0
            pixel (None: unknown).

    Returns:
        The path written.

    Example:
        >>> import tempfile, numpy as np, tifffile
        >>> from ats.training.slide_heatmap import write_heatmap_tiff
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     path = write_heatmap_tiff(f"{directory}/heatmap.tif",
        ...                               np.ones((4, 6)), 16, mpp=0.25)
        ...     with tifffile.TiffFile(path) as tif:
        ...         page = tif.pages[0]
        ...         page.shape, page.get_resolution(), page.resolutionunit.name
        ((4, 6), (2500, 2500), 'CENTIMETER')
    """
    where = "write_heatmap_tiff"
    raster = np.asarray(raster, dtype=np.float32)
    if raster.ndim != 2 or min(raster.shape) < 1:
        checks.fail("raster", "a 2-D array (h, w)", raster.shape, where)
    if not np.all(np.isfinite(raster)):
        checks.fail("raster", "finite", "non-finite values", where)
    downsample = _pair("downsample", downsample, where)
    description = {
        "downsample": downsample.tolist(),
        "level0_shape": [round(n * d) for n, d in zip(raster.shape, downsample)],
        "mpp": None,
        "values": "attention of the cell over each pixel",
    }
    if mpp is None:
        per_unit, unit = 1 / downsample, "NONE"
    else:
        mpp = _pair("mpp", mpp, where)
        description["mpp"] = mpp.tolist()
        per_unit, unit = 1e4 / (mpp * downsample), "CENTIMETER"
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        raster,
        photometric="minisblack",
        resolution=(float(per_unit[1]), float(per_unit[0])),
        resolutionunit=unit,
        description=json.dumps({"ats_heatmap": description}),
        metadata=None,
    )
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return Path(path)


def read_heatmap_description(path):
    """The ``ats_heatmap`` description of a :func:`write_heatmap_tiff` file.

    Args:
        path: str or path-like, the TIFF.

    Returns:
        ``{"downsample": [dy, dx], "level0_shape": [H, W], "mpp": [y, x] or
        None, "values": str}``.

    Raises:
        ValueError: the file has no such description (naming the file).
    """
    import tifffile

    with tifffile.TiffFile(path) as tif:
        text = tif.pages[0].description
    try:
        return json.loads(text)["ats_heatmap"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"{path}: not a heatmap of write_heatmap_tiff (its TIFF description "
            f"is {text[:80]!r})"
        ) from None
