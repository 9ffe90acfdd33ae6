"""Rendering: drawing an image's description on a canvas, and downscaling it.

Rendering is deterministic (the same description always gives the same
pixels) and needs only numpy and scipy.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse

from ... import checks
from .config import DIGIT_SIZE

__all__ = ["downscale", "draw_canvas", "render_canvas", "stroke_pixels"]


@functools.lru_cache(maxsize=16)
def _area_weights(n_in: int, n_out: int) -> scipy.sparse.csr_matrix:
    """Sparse (n_out, n_in) float32 matrix that area-averages a 1-D signal.

    In units of 1 / n_out input pixels, input pixel j covers
    [j * n_out, (j + 1) * n_out) and output pixel i covers
    [i * n_in, (i + 1) * n_in); the weight is their overlap over n_in, which
    is exact and makes every row sum to one.
    """
    i = np.arange(n_out)[:, None]
    j = np.arange(n_in)[None, :]
    overlap = np.minimum((i + 1) * n_in, (j + 1) * n_out) - np.maximum(
        i * n_in, j * n_out
    )
    weights = np.maximum(overlap, 0) / n_in
    return scipy.sparse.csr_matrix(weights.astype(np.float32))


def downscale(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Downscale an image by area averaging (an anti-aliased box filter).

    Each output pixel is the mean of the input area it covers, with fractional
    weights at its borders, so any non-integer factor works. The result is
    deterministic: the same input always gives the same output.

    Args:
        image: float array (H, W) or (H, W, C).
        shape: ``(h, w)`` of the output, with ``1 <= h <= H`` and
            ``1 <= w <= W``.

    Returns:
        float32 array (h, w) or (h, w, C).

    Example:
        >>> import numpy as np
        >>> from ats.datasets.megapixel_mnist import downscale
        >>> image = np.zeros((4, 6))
        >>> image[:2, :3] = 1
        >>> downscale(image, (2, 2))
        array([[1., 0.],
               [0., 0.]], dtype=float32)
        >>> downscale(image, (1, 4))
        array([[0.5, 0.5, 0. , 0. ]], dtype=float32)
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim not in (2, 3):
        checks.fail("image.shape", "(H, W) or (H, W, C)", image.shape)
    height, width = image.shape[:2]
    h, w = checks.int_tuple("shape", shape, length=2)
    if h > height or w > width:
        checks.fail("shape", f"(h, w) with h <= {height} and w <= {width}", (h, w))
    channels = image.shape[2:]
    rows = _area_weights(height, h) @ image.reshape(height, -1)  # (h, W*C)
    rows = rows.reshape(h, width, -1).transpose(1, 0, 2).reshape(width, -1)
    out = _area_weights(width, w) @ rows  # (w, h*C)
    out = out.reshape(w, h, -1).transpose(1, 0, 2).reshape((h, w) + channels)
    # Rows of weights sum to one up to float32 rounding; keep [0, 1] exact.
    return np.clip(out, 0.0, 1.0, dtype=np.float32)


def stroke_pixels(strokes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise straight strokes with soft, anti-aliased edges.

    A pixel's intensity falls linearly with its distance ``d`` from the
    segment between the end points: 1 up to ``d = 0.5``, 0 from ``d = 1.5``,
    about the width and softness of MNIST pen strokes.

    Args:
        strokes: int array (S, 4) of ``(row0, col0, row1, col1)``, each
            stroke at most 28 pixels long along either axis.

    Returns:
        ``(rows, cols, values)``: 1-D arrays of the lit pixels (which may
        lie just off the canvas) and their float32 intensities in (0, 1].
    """
    strokes = strokes.astype(np.int64)
    start, end = strokes[:, :2], strokes[:, 2:]
    # Each stroke is drawn in a square window reaching 2 px past its ends.
    window = np.arange(DIGIT_SIZE + 4)
    origin = np.minimum(start, end) - 2
    rows = (origin[:, 0, None] + window)[:, :, None]  # (S, window, 1)
    cols = (origin[:, 1, None] + window)[:, None, :]  # (S, 1, window)
    # Pixel and segment coordinates relative to the start point.
    pr = (rows - start[:, 0, None, None]).astype(np.float32)
    pc = (cols - start[:, 1, None, None]).astype(np.float32)
    dr, dc = (end - start).astype(np.float32).T[:, :, None, None]
    t = np.clip((pr * dr + pc * dc) / np.maximum(dr * dr + dc * dc, 1), 0, 1)
    distance = np.sqrt((pr - t * dr) ** 2 + (pc - t * dc) ** 2)
    values = np.clip(1.5 - distance, 0, 1, dtype=np.float32)
    lit = values > 0
    return (
        np.broadcast_to(rows, values.shape)[lit],
        np.broadcast_to(cols, values.shape)[lit],
        values[lit],
    )


def render_canvas(height, width, digits, positions, strokes) -> np.ndarray:
    """Draw digits and noise strokes on a black (height, width) float32 canvas.

    Overlapping strokes and digits combine by their maximum, so the drawing
    order does not matter.

    Args:
        height, width: Canvas size.
        digits: (5, 28, 28) uint8 digit pixels.
        positions: (5, 2) top-left corners of the digits.
        strokes: (S, 2, 4) noise scribbles as stroke end points.

    Returns:
        float32 array (height, width) with values in [0, 1].
    """
    canvas = np.zeros((height, width), dtype=np.float32)
    return draw_canvas(canvas, digits, positions, strokes)


def draw_canvas(canvas, digits, positions, strokes) -> np.ndarray:
    """Draw digits and noise strokes on ``canvas`` in place.

    On a black (zero) canvas it gives :func:`render_canvas`'s image; a
    batch's array is drawn in this way, one image at a time, without a
    canvas of its own per image.

    Args:
        canvas: float32 array (height, width) holding zeros (or anything:
            the drawing is combined with it by the maximum).
        digits, positions, strokes: As :func:`render_canvas`'s.

    Returns:
        ``canvas``.

    Example:
        >>> import numpy as np
        >>> from ats.datasets.megapixel_mnist.rendering import draw_canvas
        >>> canvas = np.zeros((40, 40), np.float32)
        >>> digits = np.full((1, 28, 28), 255, np.uint8)
        >>> strokes = np.zeros((0, 2, 4), np.int32)
        >>> float(draw_canvas(canvas, digits, np.array([[2, 3]]), strokes).sum())
        784.0
    """
    height, width = canvas.shape
    if strokes.size:
        rows, cols, values = stroke_pixels(strokes.reshape(-1, 4))
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        np.maximum.at(canvas, (rows[inside], cols[inside]), values[inside])
    for digit, (row, col) in zip(digits, positions.tolist()):
        box = canvas[row : row + DIGIT_SIZE, col : col + DIGIT_SIZE]
        np.maximum(box, digit.astype(np.float32) / 255, out=box)
    return canvas
