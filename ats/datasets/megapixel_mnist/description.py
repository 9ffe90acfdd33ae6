"""Describing images: which digits go where, and the noise scribbles' strokes.

An image is described by arrays, never stored as pixels: its label, the rows
of its five digits in the digit table, their top-left corners and the end
points of its noise strokes. :mod:`.rendering` draws the pixels from that.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .config import DIGIT_SIZE, N_CLASSES, N_DIGITS, N_TARGET_DIGITS, SPLITS

__all__ = ["describe_split", "noise_strokes", "place_digits"]

# Rejection sampling of digit positions: candidates drawn per digit, and how
# many times an image is started afresh when a digit finds no free place.
_PLACEMENT_CANDIDATES = 64
_PLACEMENT_RESTARTS = 20
# A noise stroke's length and the range of its centre inside its 28x28 box.
_STROKE_LENGTH = (14.0, 28.0)
_STROKE_CENTRE = (9.0, 18.0)


def place_digits(rng, height, width) -> np.ndarray:
    """Top-left corners of non-overlapping 28x28 boxes on a canvas.

    Args:
        rng: ``numpy.random.Generator``.
        height, width: Canvas size in pixels.

    Returns:
        int64 array (5, 2) of ``(row, col)``.

    Example:
        >>> import numpy as np
        >>> from ats.datasets.megapixel_mnist.description import place_digits
        >>> place_digits(np.random.default_rng(0), 100, 100).shape
        (5, 2)
    """
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


def noise_strokes(rng, n_images, n_noise, height, width) -> np.ndarray:
    """Stroke end points of the noise scribbles.

    Each scribble is two straight strokes inside a 28x28 box placed uniformly
    on the canvas; each stroke has a random angle, a length of 14 to 28 pixels
    and its centre near the middle of the box.

    Args:
        rng: ``numpy.random.Generator``.
        n_images: Number of images.
        n_noise: Scribbles per image.
        height, width: Canvas size in pixels.

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


def describe_split(split, pools, config, progress) -> dict[str, np.ndarray]:
    """Draw the description of one split's images.

    Digits and noise come from separate random streams, so switching noise
    on or off leaves the digits and their positions unchanged.

    Args:
        split: "train" or "test".
        pools: The split's 10 index arrays into the digit source, one per
            class (``digits.digit_pools``).
        config: The data set's ``MegapixelMNISTConfig``.
        progress: bool, show a progress bar.

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
        positions[i] = place_digits(rng, config.height, config.width)
    n_noise = config.n_noise if config.noise else 0
    noise_rng = np.random.default_rng([config.seed, key, 1])
    strokes = noise_strokes(noise_rng, n, n_noise, config.height, config.width)
    return {
        "labels": labels,
        "source_indices": source_indices,
        "positions": positions,
        "noise_strokes": strokes,
    }
