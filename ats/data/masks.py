"""Foreground masks on an image's low view: where attention may look.

``otsu_mask(low)`` separates tissue (or any object) from a plain background
by Otsu's threshold on the gray level, then cleans the result with a 3x3
opening and closing. ``tissue_mask(low)`` finds the tissue of an H&E slide:
saturated pixels of H&E hues (Otsu's threshold on the HSV saturation), with
white background, pen ink and dark marks left out, specks removed and small
holes filled. ``load_mask(path, low_spatial_shape)`` reads a mask file (a
PNG or any image Pillow reads, or a ``.npy`` array, nonzero is foreground,
at any resolution, resized (nearest) to the low view; or GeoJSON polygons in
level-0 pixels, as QuPath exports annotations, rasterised by
``geojson_mask``). All return bool arrays of the low view's spatial shape.
numpy only (Pillow to read image files and draw polygons).
"""

import json
import os

import numpy as np

from .sources import SourceError

__all__ = [
    "otsu_mask",
    "tissue_mask",
    "geojson_mask",
    "load_mask",
    "otsu_threshold",
    "PEN_HUES",
]

PEN_HUES = (70.0, 250.0)
"""The hues (degrees, HSV) of pen ink that H&E stain does not produce:
green (about 90-160), cyan and blue (about 180-245). Eosin is pink to red
(about 300-360 and 0-30), hematoxylin purple (about 255-300), so a
saturated pixel of a hue in ``[70, 250)`` is ink. Red ink cannot be told
from eosin this way and is kept."""


def otsu_threshold(values, bins=256):
    """Otsu's threshold of ``values`` (the one maximising the between-class
    variance of a ``bins``-bin histogram).

    Args:
        values: array of numbers.
        bins: int, histogram bins over ``[min, max]``.

    Returns:
        float: values ``> threshold`` are one class, the rest the other;
        for constant values, that value.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return lo
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    weight0 = np.cumsum(counts)
    weight1 = weight0[-1] - weight0
    sum0 = np.cumsum(counts * centres)
    mean0 = sum0 / np.maximum(weight0, 1)
    mean1 = (sum0[-1] - sum0) / np.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    # A threshold between bin i and i + 1 puts bins <= i in the first class.
    return float(edges[1:][int(np.argmax(between))])


def _shifted(mask, combine):
    """3x3 erosion (``np.logical_and``) or dilation (``np.logical_or``),
    edges replicated."""
    padded = np.pad(mask, 1, mode="edge")
    height, width = mask.shape
    out = padded[1 : 1 + height, 1 : 1 + width].copy()
    for dy in range(3):
        for dx in range(3):
            out = combine(out, padded[dy : dy + height, dx : dx + width])
    return out


def _open_close(mask):
    opened = _shifted(_shifted(mask, np.logical_and), np.logical_or)
    return _shifted(_shifted(opened, np.logical_or), np.logical_and)


def _runs(mask):
    """The horizontal runs of True of a 2-D mask, in row-major order:
    ``(rows, starts, stops)`` int arrays (``stops`` exclusive)."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    rows, starts = np.nonzero(steps == 1)
    _, stops = np.nonzero(steps == -1)
    return rows, starts, stops


def _run_components(rows, starts, stops, width, diagonal):
    """A component label per run (runs touching in consecutive rows, also
    by a corner when ``diagonal``, share it)."""
    n = len(rows)
    if n == 0:
        return np.zeros(0, np.int64)
    stride = width + 2  # keys of different rows never interleave
    corner = 1 if diagonal else 0
    start_keys = rows * stride + starts
    stop_keys = rows * stride + stops
    below = (rows + 1) * stride
    first = np.searchsorted(stop_keys, below + starts - corner, side="right")
    last = np.searchsorted(start_keys, below + stops + corner, side="left")
    counts = np.maximum(last - first, 0)
    upper = np.repeat(np.arange(n), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    lower = np.repeat(first, counts) + offsets
    labels = np.arange(n)
    while True:  # hook every pair onto the smaller root, then compress
        smaller = np.minimum(labels[upper], labels[lower])
        hooked = labels.copy()
        for index in (upper, lower, labels[upper], labels[lower]):
            np.minimum.at(hooked, index, smaller)
        while np.any(hooked[hooked] != hooked):
            hooked = hooked[hooked]
        if np.array_equal(hooked, labels):
            return labels
        labels = hooked


def _painted(shape, rows, starts, stops):
    """The bool mask of ``shape`` that is True on the given runs."""
    steps = np.zeros((shape[0], shape[1] + 1), np.int32)
    np.add.at(steps, (rows, starts), 1)
    np.add.at(steps, (rows, stops), -1)
    return np.cumsum(steps, axis=1)[:, :-1] > 0


def _without_small(mask, min_size, diagonal=True):
    """``mask`` without its connected components of fewer than
    ``min_size`` pixels."""
    rows, starts, stops = _runs(mask)
    labels = _run_components(rows, starts, stops, mask.shape[1], diagonal)
    sizes = np.bincount(labels, weights=stops - starts, minlength=len(labels))
    keep = sizes[labels] >= min_size
    return _painted(mask.shape, rows[keep], starts[keep], stops[keep])


def _holes_filled(mask, max_size):
    """``mask`` with its holes (background not connected to the border,
    4-connected) of fewer than ``max_size`` pixels filled."""
    rows, starts, stops = _runs(~mask)
    labels = _run_components(rows, starts, stops, mask.shape[1], diagonal=False)
    sizes = np.bincount(labels, weights=stops - starts, minlength=len(labels))
    border = (rows == 0) | (rows == mask.shape[0] - 1) | (starts == 0)
    border |= stops == mask.shape[1]
    touching = np.zeros(len(labels), bool)
    touching[labels[border]] = True
    fill = ~touching[labels] & (sizes[labels] < max_size)
    return mask | _painted(mask.shape, rows[fill], starts[fill], stops[fill])


def _unit_rgb(low, where):
    """``low`` as float64 RGB in [0, 1], ``(h, w, 3)`` (alpha dropped)."""
    low = np.asarray(low)
    if low.ndim != 3 or low.shape[-1] not in (3, 4):
        raise ValueError(
            f"{where}: `low` must be an RGB(A) image (h, w, 3 or 4) to have a "
            f"hue and a saturation, got shape {low.shape}; use the Otsu mask "
            "for gray images"
        )
    rgb = low[..., :3]
    if np.issubdtype(rgb.dtype, np.integer):
        return rgb / float(np.iinfo(rgb.dtype).max)
    return np.nan_to_num(rgb.astype(np.float64), nan=1.0)


def _hue_saturation_value(rgb):
    """HSV of ``(h, w, 3)`` RGB in [0, 1]: hue in degrees [0, 360) (0 where
    gray), saturation and value in [0, 1]."""
    value = rgb.max(axis=-1)
    chroma = value - rgb.min(axis=-1)
    saturation = np.where(value > 0, chroma / np.maximum(value, 1e-12), 0.0)
    red, green, blue = np.moveaxis(rgb, -1, 0)
    safe = np.maximum(chroma, 1e-12)
    hue = np.where(
        value == red,
        ((green - blue) / safe) % 6,
        np.where(value == green, (blue - red) / safe + 2, (red - green) / safe + 4),
    )
    return np.where(chroma > 0, hue * 60.0, 0.0), saturation, value


def tissue_mask(
    low,
    min_saturation=0.05,
    dark_value=0.2,
    min_tissue=1e-4,
    max_hole=1e-3,
):
    """The tissue of an H&E slide's low view, without background and pen.

    A pixel is tissue when its HSV saturation is above Otsu's threshold
    (at least ``min_saturation``) and it is neither ink nor dark: ink is a
    pixel that saturated of a hue in :data:`PEN_HUES` (green, cyan, blue:
    not H&E), dark one whose value is below ``dark_value`` (black ink,
    dirt); both are widened by one pixel, where ink blends into tissue.
    White (and gray) background has no saturation. The mask is then
    cleaned: a 3x3 opening and closing, tissue pieces smaller than
    ``min_tissue`` of the image removed, holes smaller than ``max_hole``
    filled (never over ink). An image without tissue (all white) gives an
    empty mask.

    Args:
        low: ``(h, w, 3)`` RGB (or RGBA) low view, floats in [0, 1] or
            unsigned integers.
        min_saturation: float, the lowest saturation threshold (Otsu's
            threshold of a blank image would split its noise).
        dark_value: float, HSV values below this are dark marks.
        min_tissue: float, the smallest piece of tissue kept, as a fraction
            of the image's pixels.
        max_hole: float, the largest hole filled, as a fraction of the
            image's pixels.

    Returns:
        ``(h, w)`` bool array.

    Raises:
        ValueError: ``low`` is not an RGB(A) image.

    Example:
        >>> import numpy as np
        >>> from ats.data.masks import tissue_mask
        >>> low = np.ones((40, 60, 3))                     # white glass
        >>> low[10:30, 5:25] = (0.85, 0.55, 0.75)          # pink tissue
        >>> low[10:30, 40:43] = (0.1, 0.2, 0.8)            # a blue pen line
        >>> mask = tissue_mask(low)
        >>> bool(mask[20, 15]), bool(mask[20, 41]), bool(mask[0, 0])
        (True, False, False)
    """
    rgb = _unit_rgb(low, "tissue_mask")
    hue, saturation, value = _hue_saturation_value(rgb)
    pen_hue = (hue >= PEN_HUES[0]) & (hue < PEN_HUES[1])
    dark = value < dark_value
    stain = ~dark & ~(pen_hue & (saturation > min_saturation))
    sample = saturation[stain] if stain.any() else saturation
    threshold = max(otsu_threshold(sample), float(min_saturation))
    saturated = saturation > threshold
    excluded = _shifted((saturated & pen_hue) | dark, np.logical_or)
    tissue = _open_close(saturated & ~excluded)
    tissue = _without_small(tissue, min_tissue * tissue.size)
    return _holes_filled(tissue, max_hole * tissue.size) & ~excluded


def otsu_mask(low):
    """Foreground of a low view by Otsu's threshold on its gray level.

    The gray level (the mean over channels) is split at Otsu's threshold;
    the foreground is the class that is *not* the majority of the image's
    border pixels (the background usually surrounds the object, bright or
    dark). A 3x3 opening then closing removes specks and fills pinholes; if
    that would empty a non-empty mask, the mask before it is kept. A
    constant image has no background to find: the whole image is
    foreground.

    Args:
        low: ``(h, w, C)`` or ``(h, w)`` array, the low view.

    Returns:
        ``(h, w)`` bool array.

    Example:
        >>> import numpy as np
        >>> from ats.data import otsu_mask
        >>> low = np.ones((20, 30, 3), "float32")        # white background
        >>> low[5:15, 10:20] = 0.3                       # a darker object
        >>> mask = otsu_mask(low)
        >>> mask.shape, int(mask.sum()), bool(mask[10, 15]), bool(mask[0, 0])
        ((20, 30), 100, True, False)
    """
    low = np.asarray(low, dtype=np.float64)
    if low.ndim == 3:
        gray = low.mean(axis=-1)
    elif low.ndim == 2:
        gray = low
    else:
        raise ValueError(
            f"otsu_mask: `low` must have shape (h, w, C) or (h, w), got {low.shape}"
        )
    if gray.size == 0 or gray.max() <= gray.min():
        return np.ones(gray.shape, bool)
    high = gray > otsu_threshold(gray)
    border = np.concatenate([high[0], high[-1], high[:, 0], high[:, -1]])
    mask = ~high if border.mean() > 0.5 else high
    cleaned = _open_close(mask)
    return cleaned if cleaned.any() or not mask.any() else mask


def _nearest(mask, shape):
    rows = ((np.arange(shape[0]) + 0.5) * mask.shape[0] / shape[0]).astype(int)
    cols = ((np.arange(shape[1]) + 0.5) * mask.shape[1] / shape[1]).astype(int)
    return mask[np.minimum(rows, mask.shape[0] - 1)][
        :, np.minimum(cols, mask.shape[1] - 1)
    ]


def _polygons(geometry, where):
    """The polygons (lists of rings of ``(x, y)``) of a GeoJSON geometry;
    other geometry types (points, lines) give none."""
    if not isinstance(geometry, dict):
        return []
    kind = geometry.get("type")
    if kind == "GeometryCollection":
        return [
            polygon
            for member in geometry.get("geometries", [])
            for polygon in _polygons(member, where)
        ]
    if kind not in ("Polygon", "MultiPolygon"):
        return []
    coordinates = geometry.get("coordinates")
    polygons = [coordinates] if kind == "Polygon" else coordinates
    try:
        rings = [
            [np.asarray(ring, dtype=np.float64) for ring in polygon]
            for polygon in polygons
        ]
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {kind} coordinates are not numbers") from error
    for polygon in rings:
        for ring in polygon:
            if ring.ndim != 2 or ring.shape[1] < 2 or not np.isfinite(ring).all():
                raise ValueError(
                    f"{where}: a {kind} ring must be a list of [x, y] numbers, "
                    f"got an array of shape {ring.shape}"
                )
    return rings


def _features(geojson):
    """The ``(where, geometry)`` of a FeatureCollection, a list of
    features (QuPath's older export), a Feature or a bare geometry."""
    if isinstance(geojson, list):
        return [(f"feature {i}", f.get("geometry")) for i, f in enumerate(geojson)]
    if isinstance(geojson, dict) and geojson.get("type") == "FeatureCollection":
        return _features(list(geojson.get("features", [])))
    if isinstance(geojson, dict) and geojson.get("type") == "Feature":
        return [("the feature", geojson.get("geometry"))]
    return [("the geometry", geojson)]


def geojson_mask(geojson, low_spatial_shape, level0_shape):
    """Rasterise GeoJSON polygons in level-0 pixels onto the low view.

    QuPath exports annotations this way: ``x`` along the columns, ``y``
    down the rows, in pixels of the slide's full resolution. Every Polygon
    and MultiPolygon (also inside a GeometryCollection) is drawn in order:
    its outer ring filled, its holes cleared. Other geometries (points,
    lines) are ignored.

    Args:
        geojson: the parsed GeoJSON: a FeatureCollection, a list of
            features, a Feature or a geometry.
        low_spatial_shape: ``(h, w)``, the low view's spatial shape.
        level0_shape: ``(H, W)``, the slide's level-0 spatial shape.

    Returns:
        ``(h, w)`` bool array.

    Raises:
        ValueError: no Polygon or MultiPolygon, or malformed coordinates.

    Example:
        >>> from ats.data.masks import geojson_mask
        >>> square = {"type": "Polygon", "coordinates": [[[200, 100], [400, 100],
        ...           [400, 300], [200, 300], [200, 100]]]}  # x 200-400, y 100-300
        >>> mask = geojson_mask(square, (50, 100), (500, 1000))
        >>> bool(mask[20, 30]), bool(mask[20, 60]), int(mask.sum())
        (True, False, 400)
    """
    from PIL import Image, ImageDraw

    low_shape = tuple(int(s) for s in low_spatial_shape)
    scale = np.asarray(low_shape, np.float64) / np.asarray(level0_shape, np.float64)
    polygons = [
        polygon
        for where, geometry in _features(geojson)
        for polygon in _polygons(geometry, where)
    ]
    if not polygons:
        raise ValueError(
            "no Polygon or MultiPolygon geometry (a mask needs areas, e.g. "
            "QuPath annotations exported as GeoJSON)"
        )
    # Drawn at 4x the low view's resolution, then a low-view pixel is in the
    # mask when the polygons cover at least half of it.
    fine = 4
    image = Image.new("L", (low_shape[1] * fine, low_shape[0] * fine), 0)
    draw = ImageDraw.Draw(image)
    for polygon in polygons:
        for index, ring in enumerate(polygon):
            # Level-0 x, y to pixel coordinates of the fine image (Pillow
            # puts pixel (i, j)'s centre at (i, j)).
            points = ring[:, :2] * scale[::-1] * fine - 0.5
            fill = 1 if index == 0 else 0
            draw.polygon([tuple(p) for p in points.tolist()], fill=fill)
    blocks = np.asarray(image, np.float32).reshape(
        low_shape[0], fine, low_shape[1], fine
    )
    return blocks.mean(axis=(1, 3)) >= 0.5


def load_mask(path, low_spatial_shape, level0_shape=None):
    """Read a mask file and resize it (nearest) to the low view.

    Args:
        path: str or path-like, a PNG (or any image Pillow reads) or a
            ``.npy`` array of shape ``(H, W)`` or ``(H, W, C)``, at any
            resolution, nonzero (in any channel) being foreground; or a
            ``.geojson`` / ``.json`` file of polygons in level-0 pixels
            (:func:`geojson_mask`).
        low_spatial_shape: ``(h, w)``, the low view's spatial shape.
        level0_shape: ``(H, W)``, the image's full-resolution spatial
            shape; needed for GeoJSON masks.

    Returns:
        ``(h, w)`` bool array.

    Raises:
        FileNotFoundError: no such file.
        SourceError: the file cannot be read or has the wrong rank, or a
            GeoJSON file has no polygon (or is given without
            ``level0_shape``).

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from ats.data import load_mask
        >>> path = os.path.join(tempfile.mkdtemp(), "mask.npy")
        >>> full = np.zeros((400, 600), "uint8")
        >>> full[:200] = 1                              # the top half
        >>> np.save(path, full)
        >>> mask = load_mask(path, (40, 60))
        >>> mask.shape, bool(mask[10, 5]), bool(mask[30, 5])
        ((40, 60), True, False)
    """
    path = os.fspath(path)
    shape = tuple(int(s) for s in low_spatial_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(
            f"load_mask: `low_spatial_shape` must be (h, w) of ints >= 1, got "
            f"{low_spatial_shape!r}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such mask file")
    if path.lower().endswith((".geojson", ".json")):
        return _load_geojson(path, shape, level0_shape)
    try:
        if path.lower().endswith(".npy"):
            array = np.load(path, allow_pickle=False)
        else:
            from PIL import Image

            with Image.open(path) as image:
                array = np.asarray(image)
    except Exception as error:
        raise SourceError(
            f"{path}: not a readable mask (PNG or any image Pillow reads, or "
            f".npy): {type(error).__name__}: {error}"
        ) from error
    if array.ndim == 3:
        array = np.any(array != 0, axis=-1)
    if array.ndim != 2 or array.size == 0:
        raise SourceError(
            f"{path}: a mask must have shape (H, W) or (H, W, C), got {array.shape}"
        )
    return _nearest(np.asarray(array != 0), shape)


def _load_geojson(path, low_shape, level0_shape):
    if level0_shape is None:
        raise SourceError(
            f"{path}: a GeoJSON mask is in level-0 pixels: load_mask needs "
            "the image's `level0_shape` to place it"
        )
    try:
        with open(path, encoding="utf-8") as file:
            geojson = json.load(file)
        return geojson_mask(geojson, low_shape, level0_shape)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
        raise SourceError(
            f"{path}: not a usable GeoJSON mask: {type(error).__name__}: {error}"
        ) from error
