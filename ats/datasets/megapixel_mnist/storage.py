"""Storage: a data set's description on disk, as JSON and ``.npz`` files.

A directory holds ``config.json`` (``{"format_version": 1, "config": {...}}``),
``digits.npz`` (the digit table: ``pixels``, ``labels``, ``source_indices``)
and, per split, ``train.npz`` / ``test.npz`` (``labels``, ``digit_indices``,
``positions``, ``noise_strokes``). No file needs pickle to be read, and
nothing in them depends on the digit source.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .config import N_DIGITS, SPLITS, MegapixelMNISTConfig

__all__ = ["DIGIT_ARRAYS", "FORMAT_VERSION", "SPLIT_ARRAYS", "read", "write"]

FORMAT_VERSION = 1
"""Version of the layout written by :func:`write`; :func:`read` refuses others."""
DIGIT_ARRAYS = ("pixels", "labels", "source_indices")
"""The arrays of ``digits.npz``."""
SPLIT_ARRAYS = ("labels", "digit_indices", "positions", "noise_strokes")
"""The arrays of each split's ``.npz`` file."""


def write(directory: str | os.PathLike, config, digits, splits) -> None:
    """Write a description to ``directory`` (created if needed).

    Args:
        directory: The directory.
        config: The data set's ``MegapixelMNISTConfig``.
        digits: Dict of the :data:`DIGIT_ARRAYS`.
        splits: For each of :data:`SPLITS`, a dict of the :data:`SPLIT_ARRAYS`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"format_version": FORMAT_VERSION, "config": config.to_dict()}
    (directory / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    np.savez_compressed(
        directory / "digits.npz", **{key: digits[key] for key in DIGIT_ARRAYS}
    )
    for name in SPLITS:
        arrays = {key: splits[name][key] for key in SPLIT_ARRAYS}
        np.savez_compressed(directory / f"{name}.npz", **arrays)


def read(directory: str | os.PathLike):
    """Read a description written by :func:`write`, checking the arrays' shapes.

    Returns:
        ``(config, digits, splits)`` as the arguments of :func:`write`.
    """
    directory = Path(directory)
    meta = json.loads((directory / "config.json").read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{directory / 'config.json'}: format_version must be "
            f"{FORMAT_VERSION}, got {meta.get('format_version')!r}"
        )
    config = MegapixelMNISTConfig(**meta["config"])
    digits = _read_npz(directory / "digits.npz", DIGIT_ARRAYS)
    splits = {s: _read_npz(directory / f"{s}.npz", SPLIT_ARRAYS) for s in SPLITS}
    n_noise = config.n_noise if config.noise else 0
    for name, arrays in splits.items():
        n = config.n_images(name)
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
    return config, digits, splits


def _read_npz(path, keys) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        missing = set(keys) - set(data.files)
        if missing:
            raise ValueError(
                f"{path} must hold arrays {list(keys)}, missing {sorted(missing)}"
            )
        return {key: data[key] for key in keys}
