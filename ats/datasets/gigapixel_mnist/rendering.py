"""Rendering a Gigapixel MNIST image from its description, window by window,
and writing it as a pyramidal tiled TIFF."""

from __future__ import annotations

import numpy as np

from ...data.tiff import import_tiff_libraries
from ..megapixel_mnist.rendering import stroke_pixels
from .config import (
    MAX_SUPERSAMPLING,
)


def glyphs(split, i):
    """The glyphs of image ``i``: ``(pixels (h, w) float32, origin (2,))``.

    Digits are their 28x28 pixels; each noise scribble (two strokes) is
    rasterized as Megapixel MNIST draws it into its own small glyph.
    """
    glyphs = [
        (split._digit_pixels[d].astype(np.float32) / 255, np.asarray(p, dtype=np.int64))
        for d, p in zip(split.digit_indices[i], split.positions[i])
    ]
    for strokes in split.noise_strokes[i]:
        rows, cols, values = stroke_pixels(strokes)
        origin = np.array([rows.min(), cols.min()])
        pixels = np.zeros(
            (rows.max() - origin[0] + 1, cols.max() - origin[1] + 1), np.float32
        )
        np.maximum.at(pixels, (rows - origin[0], cols - origin[1]), values)
        glyphs.append((pixels, origin))
    return glyphs


def _linear_taps(t, n):
    """Indices into a glyph axis padded by one zero on each side, and
    weights, of linear interpolation at coordinates ``t`` in ``(-1, n)``."""
    below = np.floor(t)
    weight = (t - below).astype(np.float32)
    index = below.astype(np.int64) + 1
    return index, np.minimum(index + 1, n + 1), weight


def _bilinear(pixels, t_rows, t_cols):
    """``pixels`` (zero outside) linearly interpolated on the grid
    ``t_rows x t_cols`` of glyph coordinates (pixel ``i`` at ``t = i``)."""
    padded = np.pad(pixels, 1)
    r0, r1, wr = _linear_taps(t_rows, pixels.shape[0])
    c0, c1, wc = _linear_taps(t_cols, pixels.shape[1])
    rows = padded[r0] * (1 - wr[:, None]) + padded[r1] * wr[:, None]
    return rows[:, c0] * (1 - wc) + rows[:, c1] * wc


def _sample_coordinates(start, stop, level):
    """Full-resolution coordinates of the samples of level pixels
    ``[start, stop)``, ``min(2**level, 4)`` per pixel, ascending."""
    factor = 2**level
    per_pixel = min(factor, MAX_SUPERSAMPLING)
    offsets = (np.arange(per_pixel) + 0.5) / per_pixel
    return ((np.arange(start, stop)[:, None] + offsets) * factor).ravel(), per_pixel


def _glyph_extent(glyph, zoom):
    """Full-resolution box ``(r0, r1, c0, c1)`` where a glyph is non-zero."""
    pixels, origin = glyph
    low = (origin - 0.5) * zoom
    high = (origin + np.asarray(pixels.shape) + 0.5) * zoom
    return low[0], high[0], low[1], high[1]


def render_window(glyphs, zoom, level, rows, cols):
    """Render a window of one pyramid level of a Gigapixel MNIST image.

    A full-resolution pixel (continuous coordinate ``X``) of a glyph with
    pixels ``G`` at base-canvas ``origin`` is ``min(G bilinear at X / zoom
    - 0.5 - origin, G[(floor(X) - floor(origin * zoom)) mod G.shape])``;
    glyphs combine by their maximum; a level-``l`` pixel averages
    ``min(2**l, 4)**2`` samples of its footprint.

    Args:
        glyphs: list of ``(pixels (h, w) float32 in [0, 1], origin (2,))``.
        zoom: float, full-resolution pixels per base-canvas pixel.
        level: int, the pyramid level (each halves the resolution).
        rows, cols: ``(start, stop)`` level pixels of the window.

    Returns:
        ``(rows, cols)`` float32 array in [0, 1].
    """
    x_rows, per_pixel = _sample_coordinates(*rows, level)
    x_cols, _ = _sample_coordinates(*cols, level)
    out = np.zeros((rows[1] - rows[0], cols[1] - cols[0]), np.float32)
    hits = []
    for glyph in glyphs:
        r0, r1, c0, c1 = _glyph_extent(glyph, zoom)
        ra, rb = np.searchsorted(x_rows, (r0, r1))
        ca, cb = np.searchsorted(x_cols, (c0, c1))
        if ra < rb and ca < cb:
            hits.append((glyph, ra, rb, ca, cb))
    if not hits:
        return out
    # Sample only the pixels the glyphs touch.
    top = min(h[1] for h in hits) // per_pixel
    bottom = -(-max(h[2] for h in hits) // per_pixel)
    left = min(h[3] for h in hits) // per_pixel
    right = -(-max(h[4] for h in hits) // per_pixel)
    canvas = np.zeros(
        ((bottom - top) * per_pixel, (right - left) * per_pixel), np.float32
    )
    for (pixels, origin), ra, rb, ca, cb in hits:
        sub_rows, sub_cols = x_rows[ra:rb], x_cols[ca:cb]
        height, width = pixels.shape
        big = _bilinear(
            pixels, sub_rows / zoom - 0.5 - origin[0], sub_cols / zoom - 0.5 - origin[1]
        )
        anchor = np.floor(origin * zoom).astype(np.int64)
        small = pixels[(np.floor(sub_rows).astype(np.int64) - anchor[0]) % height][
            :, (np.floor(sub_cols).astype(np.int64) - anchor[1]) % width
        ]
        window = canvas[
            ra - top * per_pixel : rb - top * per_pixel,
            ca - left * per_pixel : cb - left * per_pixel,
        ]
        np.maximum(window, np.minimum(big, small), out=window)
    blocks = canvas.reshape(bottom - top, per_pixel, right - left, per_pixel)
    out[top:bottom, left:right] = blocks.sum(axis=3).sum(axis=1) / per_pixel**2
    return out


def _tiles(glyphs, zoom, level, side, tile):
    """The tiles of one level in row-major order, uint8, edge tiles padded."""
    extents = np.array([_glyph_extent(g, zoom) for g in glyphs]).reshape(-1, 4)
    empty = np.zeros((tile, tile), np.uint8)
    factor = 2**level
    for r in range(0, side, tile):
        rows = (r, min(r + tile, side))
        in_rows = (extents[:, 1] > rows[0] * factor) & (
            extents[:, 0] < rows[1] * factor
        )
        for c in range(0, side, tile):
            cols = (c, min(c + tile, side))
            hit = (
                in_rows
                & (extents[:, 3] > cols[0] * factor)
                & (extents[:, 2] < cols[1] * factor)
            )
            if not hit.any():
                yield empty
                continue
            window = render_window(
                [glyphs[k] for k in np.flatnonzero(hit)], zoom, level, rows, cols
            )
            out = np.zeros((tile, tile), np.uint8)
            out[: window.shape[0], : window.shape[1]] = np.rint(window * 255)
            yield out


def write_tiff(path, glyphs, config):
    """Write one image as a pyramidal tiled TIFF, tile by tile.

    Level 0 is the first page; each reduced level is a further page marked
    reduced-resolution (readable by tifffile, tiffslide and OpenSlide).

    Args:
        path: the file to write.
        glyphs: the image's glyphs (see :func:`render_window`).
        config: a :class:`GigapixelMNISTConfig`.
    """
    tifffile, _ = import_tiff_libraries(path)
    compression = None if config.compression == "none" else config.compression
    options = dict(
        tile=(config.tile, config.tile),
        dtype=np.uint8,
        photometric="minisblack",
        compression=compression,
    )
    if config.compression == "jpeg":
        options["compressionargs"] = {"level": config.quality}
    with tifffile.TiffWriter(path, bigtiff=True) as writer:
        for level, side in enumerate(config.level_sides):
            writer.write(
                _tiles(glyphs, config.zoom, level, side, config.tile),
                shape=(side, side),
                subfiletype=1 if level else 0,
                **options,
            )
