"""Foreground masks on an image's low view: where attention may look.

``otsu_mask(low)`` separates tissue (or any object) from a plain background
by Otsu's threshold on the gray level, then cleans the result with a 3x3
opening and closing. ``load_mask(path, low_spatial_shape)`` reads a mask
file (a PNG or any image Pillow reads, or a ``.npy`` array; nonzero is
foreground) at any resolution and resizes it (nearest) to the low view.
Both return bool arrays of the low view's spatial shape. numpy only (Pillow
to read image files).
"""

import os

import numpy as np

from .sources import SourceError

__all__ = ["otsu_mask", "load_mask", "otsu_threshold"]


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


def load_mask(path, low_spatial_shape):
    """Read a mask file and resize it (nearest) to the low view.

    Args:
        path: str or path-like, a PNG (or any image Pillow reads) or a
            ``.npy`` array of shape ``(H, W)`` or ``(H, W, C)``, at any
            resolution; nonzero (in any channel) is foreground.
        low_spatial_shape: ``(h, w)``, the low view's spatial shape.

    Returns:
        ``(h, w)`` bool array.

    Raises:
        FileNotFoundError: no such file.
        SourceError: the file cannot be read or has the wrong rank.

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
