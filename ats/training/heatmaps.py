"""Pictures of one image: where the model looked, and what it saw there.

* :func:`save_heatmap`: a thumbnail of the image with the attention map
  over it, the most attended patches outlined and numbered, and the
  contour of the image's foreground mask.
* :func:`save_gallery`: the patches at full resolution in a grid, each
  titled with its number and attention value.

Grayscale (one channel) and RGB (three channels) images, values in
``[0, 1]``. Drawn with matplotlib's non-interactive ``Agg`` backend, with a
fixed pixel layout (the PNG's size follows from the inputs, see each
function), and written atomically.

Example:
    >>> import tempfile, numpy as np
    >>> from ats.training.heatmaps import save_heatmap
    >>> thumbnail = np.full((60, 80, 3), 0.5, "float32")
    >>> attention = np.random.default_rng(0).random((6, 8))
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     path = save_heatmap(f"{directory}/heatmap.png", thumbnail,
    ...                         attention, [[10, 20, 30, 40]], size=400)
    ...     from PIL import Image
    ...     Image.open(path).size
    (400, 300)
"""

import math
from pathlib import Path

import numpy as np

from .. import checks
from .pictures import _pyplot, _save

__all__ = ["save_heatmap", "save_gallery"]

_BOX_COLOUR = "#00e5ff"
_MASK_COLOUR = "#7fff00"
_TITLE_HEIGHT = 28  # pixels above the picture when it has a title
_CAPTION_HEIGHT = 16  # pixels above each patch of a gallery
_GAP = 6  # pixels between the patches of a gallery
_MIN_CELL_WIDTH = 64  # a caption fits above the smallest patches
_DPI = 100


def _image(name, value, ndim):
    """``value`` as float32 ``(..., h, w, C)`` with ``C`` 1 or 3, in [0, 1]."""
    array = np.asarray(value)
    if array.ndim == ndim - 1:
        array = array[..., None]
    if (
        array.ndim != ndim
        or array.shape[-1] not in (1, 3)
        or min(array.shape[:-1], default=0) < 1
        or array.dtype.kind not in "biuf"
    ):
        shape = "(h, w, C)" if ndim == 3 else "(N, h, w, C)"
        checks.fail(
            name,
            f"an array of shape {shape} with C = 1 (gray) or 3 (RGB)",
            f"shape {array.shape} of dtype {array.dtype}",
        )
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        checks.fail(name, "finite", "non-finite values")
    return np.clip(array, 0.0, 1.0)


def _rectangles(name, value):
    """``value`` as a float ``(N, 4)`` array (``None``: no rectangle)."""
    if value is None:
        return np.zeros((0, 4))
    array = np.asarray(value, dtype=float)
    if array.size == 0:
        return np.zeros((0, 4))
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != 4 or not np.all(np.isfinite(array)):
        checks.fail(name, "finite [y0, x0, y1, x1] rows, shape (N, 4)", value)
    return array


def _figure(plt, width, height):
    """A figure of exactly ``width`` x ``height`` pixels."""
    # Half a pixel more: Agg truncates the size in pixels.
    return plt.figure(figsize=((width + 0.5) / _DPI, (height + 0.5) / _DPI), dpi=_DPI)


def _show(target, image, **kwargs):
    """Draw an ``(h, w, C)`` image, gray or RGB, on axes or a figure."""
    # Gray as RGB: exact levels (a colormap would round them to its table).
    return target(np.repeat(image, 3 // image.shape[-1], axis=-1), **kwargs)


def save_heatmap(
    path, thumbnail, attention, boxes, title=None, mask=None, extent=None, size=800
):
    """Draw the attention over a thumbnail of an image, with its best patches.

    The thumbnail is drawn so that its longer side is ``size`` pixels; the
    attention map is stretched over it (or over ``extent``) in colour, on a
    square-root scale, transparent where the attention is 0 and the more
    opaque and bright the higher it is; the ``boxes`` (e.g. the most
    attended patches, most attended first) are outlined and numbered; the
    contour of ``mask`` (the image's foreground) is drawn when given.

    Args:
        path: str or path-like, the PNG file to write.
        thumbnail: ``(h, w, C)`` (or ``(h, w)``) the image, ``C`` 1 (gray)
            or 3 (RGB), values in [0, 1] (clipped).
        attention: ``(h', w')`` non-negative attention map.
        boxes: ``(N, 4)`` rectangles ``[y0, x0, y1, x1]`` in thumbnail
            pixels (top, left, bottom, right edges), or None.
        title: optional title, in a band above the picture.
        mask: optional ``(hm, wm)`` foreground mask (nonzero: foreground),
            stretched over the same rectangle as the attention.
        extent: optional ``[y0, x0, y1, x1]``: the rectangle of thumbnail
            pixels that the attention map (and the mask) cover (default:
            the whole thumbnail, ``[0, 0, h, w]``).
        size: int, the longer side of the drawn thumbnail in pixels.

    Returns:
        The path written. The PNG is ``round(w * size / max(h, w))`` pixels
        wide and ``round(h * size / max(h, w))`` high (at least 1), plus
        28 pixels with a title.
    """
    thumbnail = _image("thumbnail", thumbnail, 3)
    attention = np.asarray(attention, dtype=float)
    if attention.ndim != 2 or min(attention.shape) < 1:
        checks.fail("attention", "a 2-D array (h', w')", attention.shape)
    if not np.all(np.isfinite(attention)) or attention.min() < 0:
        checks.fail("attention", "finite and >= 0", "negative or non-finite values")
    boxes = _rectangles("boxes", boxes)
    height, width = thumbnail.shape[:2]
    top, left, bottom, right = (
        (0.0, 0.0, height, width)
        if extent is None
        else _rectangles("extent", extent)[0]
    )
    if mask is not None:
        mask = np.asarray(mask)
        if mask.ndim != 2 or min(mask.shape) < 1:
            checks.fail("mask", "a 2-D array (hm, wm)", f"shape {mask.shape}")
        mask = (mask != 0).astype(float)
    size = checks.integer("size", size, minimum=1)
    scale = size / max(height, width)
    picture_w = max(1, round(width * scale))
    picture_h = max(1, round(height * scale))
    band = _TITLE_HEIGHT if title else 0

    plt = _pyplot()
    from matplotlib.colors import PowerNorm
    from matplotlib.patches import Rectangle

    fig = _figure(plt, picture_w, picture_h + band)
    ax = fig.add_axes((0, 0, 1, picture_h / (picture_h + band)))
    ax.axis("off")
    _show(
        ax.imshow,
        thumbnail,
        extent=(0, width, height, 0),
        aspect="auto",
        interpolation="antialiased",
    )
    # Square-root colour scale: a peaked attention stays visible; opaque
    # where the attention is highest, the thumbnail as it is where it is 0.
    norm = PowerNorm(0.5, vmin=0, vmax=attention.max() or 1.0)
    ax.imshow(
        attention,
        cmap="inferno",
        alpha=0.7 * np.asarray(norm(attention)),
        norm=norm,
        extent=(left, right, bottom, top),
        aspect="auto",
        # Cells as they are; smoothed only when there are more cells than
        # pixels (no peak disappears between pixels).
        interpolation="antialiased",
    )
    if mask is not None and 0 < mask.sum() < mask.size:
        rows, columns = mask.shape
        ax.contour(
            left + (np.arange(columns) + 0.5) * (right - left) / columns,
            top + (np.arange(rows) + 0.5) * (bottom - top) / rows,
            mask,
            levels=[0.5],
            colors=_MASK_COLOUR,
            linewidths=1.2,
        )
    for i, (y0, x0, y1, x1) in enumerate(boxes):
        ax.add_patch(
            Rectangle(
                (x0, y0),
                x1 - x0,
                y1 - y0,
                fill=False,
                edgecolor=_BOX_COLOUR,
                linewidth=1.5,
            )
        )
        ax.text(
            min(x0, x1) + 2 / scale,
            min(y0, y1) + 2 / scale,
            str(i + 1),
            color=_BOX_COLOUR,
            fontsize=8,
            va="top",
        )
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    if title:
        fig.text(
            0.5,
            1 - band / 2 / (picture_h + band),
            title,
            ha="center",
            va="center",
            fontsize=11,
        )
    _save(fig, path, plt)
    return Path(path)


def save_gallery(path, patches, values, title=None):
    """Draw patches at full resolution in a grid, each with its value.

    Each patch pixel is one pixel of the PNG (no resampling). The grid has
    ``ceil(sqrt(N))`` columns; above each patch a caption ``"i: value"``
    (``i`` counted from 1, in the order given).

    Args:
        path: str or path-like, the PNG file to write.
        patches: ``(N, ph, pw, C)`` (or ``(N, ph, pw)``), ``C`` 1 (gray) or
            3 (RGB), values in [0, 1] (clipped); ``N >= 1``.
        values: ``(N,)`` the patches' attention values (any finite numbers).
        title: optional title, in a band above the grid.

    Returns:
        The path written. With ``c`` columns and ``r`` rows, the PNG is
        ``c * cell + (c + 1) * 6`` pixels wide, where ``cell = max(pw,
        64)``, and ``r * (ph + 16) + (r + 1) * 6`` pixels high, plus 28
        pixels with a title.

    Example:
        >>> import tempfile, numpy as np
        >>> from ats.training.heatmaps import save_gallery
        >>> patches = np.random.default_rng(0).random((5, 100, 100, 1))
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     path = save_gallery(f"{directory}/patches.png", patches,
        ...                         [0.3, 0.2, 0.1, 0.05, 0.01])
        ...     from PIL import Image
        ...     Image.open(path).size
        (324, 250)
    """
    patches = _image("patches", patches, 4)
    n, patch_h, patch_w = patches.shape[:3]
    values = np.asarray(values, dtype=float)
    if values.shape != (n,) or not np.all(np.isfinite(values)):
        checks.fail("values", f"{n} finite numbers, one per patch", values)
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    cell_w, cell_h = max(patch_w, _MIN_CELL_WIDTH), patch_h + _CAPTION_HEIGHT
    band = _TITLE_HEIGHT if title else 0
    width = columns * cell_w + (columns + 1) * _GAP
    height = rows * cell_h + (rows + 1) * _GAP + band

    plt = _pyplot()
    fig = _figure(plt, width, height)
    for i, (patch, value) in enumerate(zip(patches, values)):
        row, column = divmod(i, columns)
        left = _GAP + column * (cell_w + _GAP) + (cell_w - patch_w) // 2
        top = band + _GAP + row * (cell_h + _GAP) + _CAPTION_HEIGHT
        # figimage places pixels as they are, from the bottom-left corner.
        _show(fig.figimage, patch, xo=left, yo=height - top - patch_h, origin="upper")
        fig.text(
            (left + patch_w / 2) / width,
            1 - (top - _CAPTION_HEIGHT / 2) / height,
            f"{i + 1}: {value:.3g}",
            ha="center",
            va="center",
            fontsize=8,
        )
    if title:
        fig.text(0.5, 1 - band / 2 / height, title, ha="center", va="center")
    _save(fig, path, plt)
    return Path(path)
