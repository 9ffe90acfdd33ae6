"""Where the model looked, as GeoJSON objects that QuPath imports.

QuPath (0.4 and later) reads a GeoJSON ``FeatureCollection`` through *File
> Object data... > Import objects* or by dropping the file on the viewer:
each ``Feature``'s ``geometry`` becomes an object's region, in pixels of the
full-resolution image (level 0) with the origin at its top-left corner and
``x`` to the right, ``y`` down; ``properties.objectType`` says which kind of
object (``"annotation"``, ``"detection"``), ``properties.classification`` its
class (``{"name", "color"}``) and ``properties.measurements`` a map of
named numbers shown in its measurement table (and in *Measure > Measurement
maps* for detections).

* :func:`patch_features`: the most attended patches, one rectangle
  annotation each, exactly where they were read, with their ``attention``
  and ``rank``.
* :func:`attention_grid_features`: the attention map as a grid of cells,
  one square detection per attention position above a threshold, with its
  ``attention``.
* :func:`write_geojson`: a ``FeatureCollection`` of features, written
  atomically.

Rectangles are ``Polygon`` s with a closed ring (the first corner repeated
at the end), corners in the order QuPath itself exports them.

Example:
    >>> from ats.training.qupath import patch_features
    >>> feature, = patch_features([[10, 20]], (64, 64), [0.25], scale=2.0)
    >>> feature["geometry"]["coordinates"]
    [[[40.0, 20.0], [168.0, 20.0], [168.0, 148.0], [40.0, 148.0], [40.0, 20.0]]]
    >>> feature["properties"]["measurements"]
    {'attention': 0.25, 'rank': 1}
"""

import json
from pathlib import Path

import numpy as np

from .. import checks
from .run import atomic_write

__all__ = ["patch_features", "attention_grid_features", "write_geojson"]

PATCH_CLASS = {"name": "Attended patch", "color": [0, 229, 255]}
"""The QuPath class of the most attended patches."""

CELL_CLASS = {"name": "Attention", "color": [255, 140, 0]}
"""The QuPath class of the attention map's cells."""


def _pair(name, value, where):
    """``value`` (a number or a pair) as a float64 ``(2,)`` array > 0."""
    array = np.broadcast_to(np.asarray(value, dtype=float), (2,))
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        checks.fail(name, "a positive number or (y, x) pair", value, where)
    return array


def _attention_map(value, where):
    """``value`` as a float64 ``(h', w')`` array, finite and >= 0."""
    attention = np.asarray(value, dtype=float)
    if attention.ndim != 2 or min(attention.shape) < 1:
        checks.fail("attention", "a 2-D array (h', w')", attention.shape, where)
    if not np.all(np.isfinite(attention)) or attention.min() < 0:
        checks.fail("attention", "finite and >= 0", "negative or non-finite", where)
    return attention


def _origin(value, where):
    """``value`` as a finite float64 ``(y, x)`` array."""
    origin = np.asarray(value, dtype=float)
    if origin.shape != (2,) or not np.all(np.isfinite(origin)):
        checks.fail("origin", "a finite (y, x) pair", value, where)
    return origin


def _values(name, value, n, where):
    """``value`` as ``n`` finite floats."""
    array = np.asarray(value, dtype=float)
    if array.shape != (n,) or not np.all(np.isfinite(array)):
        checks.fail(name, f"{n} finite numbers", value, where)
    return array


def _rectangle(top, left, bottom, right):
    """A GeoJSON ``Polygon`` of a rectangle (closed ring, ``[x, y]``)."""
    ring = [[left, top], [right, top], [right, bottom], [left, bottom], [left, top]]
    return {"type": "Polygon", "coordinates": [[[float(v) for v in p] for p in ring]]}


def patch_features(corners, patch_size, attention, scale=1.0):
    """The patches a model read, as QuPath rectangle annotations.

    Args:
        corners: ``(N, 2)`` ``[y, x]`` top-left corners of the patches in
            the pixels they were read from (``ats.models.classifier.
            inspect``'s ``corners``); they may lie outside the image near
            its border (the pixels read there are zeros).
        patch_size: ``(ph, pw)`` the patch size in those pixels.
        attention: ``(N,)`` the patches' attention.
        scale: level-0 pixels per pixel of ``corners``: a number or a
            ``(y, x)`` pair (1 when the patches are read at full
            resolution).

    Returns:
        ``N`` GeoJSON ``Feature`` dicts, in the order given (``rank`` 1
        first): the rectangle ``[x, y]`` from ``corner * scale`` to
        ``(corner + patch_size) * scale``, ``objectType`` ``"annotation"``,
        name ``"patch i"``, class :data:`PATCH_CLASS`, measurements
        ``attention`` and ``rank``.
    """
    where = "patch_features"
    corners = np.asarray(corners, dtype=float).reshape(-1, 2)
    if not np.all(np.isfinite(corners)):
        checks.fail("corners", "finite (N, 2) [y, x] corners", corners, where)
    size = np.asarray(
        checks.int_tuple("patch_size", patch_size, length=2, where=where), float
    )
    attention = _values("attention", attention, len(corners), where)
    scale = _pair("scale", scale, where)
    features = []
    for rank, (corner, value) in enumerate(zip(corners, attention), start=1):
        top, left = corner * scale
        bottom, right = (corner + size) * scale
        features.append(
            {
                "type": "Feature",
                "geometry": _rectangle(top, left, bottom, right),
                "properties": {
                    "objectType": "annotation",
                    "name": f"patch {rank}",
                    "classification": dict(PATCH_CLASS),
                    "measurements": {"attention": float(value), "rank": rank},
                },
            }
        )
    return features


def attention_grid_features(
    attention,
    origin,
    cell,
    scale=1.0,
    bounds=None,
    min_fraction=0.05,
    max_cells=10_000,
):
    """The attention map as a grid of QuPath detections, one per cell.

    Cell ``(i, j)`` of the map covers the low-view pixels from ``origin +
    (i, j) * cell`` to ``origin + (i + 1, j + 1) * cell`` (clipped to
    ``bounds``), scaled by ``scale`` to level-0 pixels. Only the cells whose
    attention is above 0 and at least ``min_fraction`` of the map's largest
    are kept (positions outside the support have 0), at
    most ``max_cells`` of them (the most attended): a whole low view would
    be too many objects to open.

    Args:
        attention: ``(h', w')`` non-negative attention map.
        origin: ``(y, x)`` low-view pixels of cell ``(0, 0)``'s top-left
            corner.
        cell: a number or ``(y, x)`` pair, the cells' side in low-view
            pixels.
        scale: a number or ``(y, x)`` pair, level-0 pixels per low-view
            pixel.
        bounds: optional ``(h, w)``, the low view's shape: cells are clipped
            to it.
        min_fraction: float in [0, 1], the threshold relative to the
            largest attention.
        max_cells: int >= 1, the most cells returned.

    Returns:
        GeoJSON ``Feature`` dicts, the most attended first (``objectType``
        ``"detection"``, class :data:`CELL_CLASS`, measurements
        ``attention`` and ``attention / max``); none when the map is all
        zeros.

    Example:
        >>> import numpy as np
        >>> from ats.training.qupath import attention_grid_features
        >>> attention = np.array([[0.0, 0.1], [0.6, 0.3]])
        >>> cells = attention_grid_features(attention, (0, 0), 1, scale=8)
        >>> [c["properties"]["measurements"]["attention"] for c in cells]
        [0.6, 0.3, 0.1]
        >>> cells[0]["geometry"]["coordinates"][0][:3]
        [[0.0, 8.0], [8.0, 8.0], [8.0, 16.0]]
    """
    where = "attention_grid_features"
    attention = _attention_map(attention, where)
    origin = _origin(origin, where)
    cell = _pair("cell", cell, where)
    scale = _pair("scale", scale, where)
    limit = np.full(2, np.inf) if bounds is None else _pair("bounds", bounds, where)
    min_fraction = checks.real("min_fraction", min_fraction, 0, 1, where=where)
    max_cells = checks.integer("max_cells", max_cells, minimum=1, where=where)
    largest = attention.max()
    if largest == 0:
        return []
    rows, columns = np.nonzero((attention > 0) & (attention >= min_fraction * largest))
    values = attention[rows, columns]
    order = np.argsort(-values, kind="stable")[:max_cells]
    features = []
    for i, j, value in zip(rows[order], columns[order], values[order]):
        start = np.minimum(origin + (i, j) * cell, limit)
        stop = np.minimum(origin + (i + 1, j + 1) * cell, limit)
        if np.any(stop <= start):
            continue  # a cell beyond the low view
        (top, left), (bottom, right) = start * scale, stop * scale
        features.append(
            {
                "type": "Feature",
                "geometry": _rectangle(top, left, bottom, right),
                "properties": {
                    "objectType": "detection",
                    "classification": dict(CELL_CLASS),
                    "measurements": {
                        "attention": float(value),
                        "attention / max": float(value / largest),
                    },
                },
            }
        )
    return features


def write_geojson(path, features):
    """Write features as a GeoJSON ``FeatureCollection``, atomically.

    Args:
        path: str or path-like, the ``.geojson`` file to (over)write.
        features: GeoJSON ``Feature`` dicts (e.g. :func:`patch_features`
            and :func:`attention_grid_features`).

    Returns:
        The path written.

    Raises:
        ValueError: a feature with a non-finite number (JSON cannot hold
            NaN or infinity).

    Example:
        >>> import json, tempfile
        >>> from ats.training.qupath import patch_features, write_geojson
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     path = write_geojson(f"{directory}/slide.geojson",
        ...                          patch_features([[0, 0]], (8, 8), [1.0]))
        ...     collection = json.loads(path.read_text())
        >>> collection["type"], len(collection["features"])
        ('FeatureCollection', 1)
    """
    collection = {"type": "FeatureCollection", "features": list(features)}
    text = json.dumps(collection, allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
    return Path(path)
