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
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .config import N_CLASSES, N_DIGITS, SPLITS, MegapixelMNISTConfig

__all__ = [
    "DIGIT_ARRAYS",
    "FORMAT_VERSION",
    "SPLIT_ARRAYS",
    "read",
    "read_config",
    "read_json",
    "write",
]

_REMAKE = "make the data set again (`ats mnist make-data` or `ats gigapixel make-data`)"

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
    path = directory / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory}: no config.json: not a Megapixel MNIST data set "
            "(written by `ats mnist make-data`)"
        )
    config = read_config(path, MegapixelMNISTConfig, FORMAT_VERSION)
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
        _check_range(directory / f"{name}.npz", "labels", arrays["labels"], N_CLASSES)
        _check_range(
            directory / f"{name}.npz",
            "digit_indices",
            arrays["digit_indices"],
            len(digits["pixels"]),
        )
    return config, digits, splits


def _check_range(path, key, values, stop):
    """Refuse an array that is not of ints in ``[0, stop)``."""
    if values.size and (
        not np.issubdtype(values.dtype, np.integer)
        or values.min() < 0
        or values.max() >= stop
    ):
        bad = values.ravel()[~((values.ravel() >= 0) & (values.ravel() < stop))]
        raise ValueError(
            f"{path}: {key} must be ints in [0, {stop}), got "
            f"{bad[0] if bad.size else values.dtype}; {_REMAKE}"
        )


def read_config(path, config_class, version, what="a data set's description"):
    """The ``config_class`` of a description file ``{"format_version":
    version, "config": {...}}``; ``ValueError`` naming the file if it is not
    one."""
    meta = read_json(path, what)
    found = meta.get("format_version") if isinstance(meta, dict) else None
    if found != version:
        raise ValueError(f"{path}: format_version must be {version}, got {found!r}")
    try:
        return config_class(**meta["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a valid configuration ({error})") from None


def read_json(path, what):
    """The JSON document in ``path``; ``ValueError`` naming the file if it is
    not one (``what``: what it should be, for the message)."""
    try:
        return json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        problem = getattr(error, "msg", None) or "not UTF-8 text"
        raise ValueError(
            f"{path}: not {what} (invalid JSON: {problem}); {_REMAKE}"
        ) from None


def _read_npz(path, keys) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of ``path``, read without pickle; a missing,
    truncated or corrupt file raises an error naming it (never numpy's
    advice to unpickle)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file; {_REMAKE}")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not an .npz archive (truncated or corrupt); {_REMAKE}"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = set(keys) - set(data.files)
            if missing:
                raise ValueError(
                    f"{path} must hold arrays {list(keys)}, missing "
                    f"{sorted(missing)}; {_REMAKE}"
                )
            return {key: data[key] for key in keys}
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as error:
        raise ValueError(
            f"{path}: truncated or corrupt ({type(error).__name__}); {_REMAKE}"
        ) from None
    except ValueError as error:
        if str(error).startswith(str(path)):
            raise
        raise ValueError(f"{path}: truncated or corrupt ({error}); {_REMAKE}") from None
