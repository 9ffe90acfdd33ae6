"""A whole data set: its parameters, digit table and both splits."""

from __future__ import annotations

import os

import numpy as np

from ... import checks
from . import digits, storage
from .config import SPLITS, MegapixelMNISTConfig, check_split
from .description import describe_split
from .split import MegapixelMNISTSplit

__all__ = ["MegapixelMNIST"]


class MegapixelMNIST:
    """A Megapixel MNIST data set: parameters, digit table and image descriptions.

    Make one with :meth:`generate` or :meth:`load`; get its images with
    :meth:`split`.

    Attributes:
        config: The :class:`MegapixelMNISTConfig` it was generated from.
        digit_pixels: (M, 28, 28) uint8 pixels of the digits the images use.
        digit_labels: (M,) int64 classes of those digits.
        digit_source_indices: (M,) int64 index of each digit in its source.

    Example:
        >>> from ats.datasets.megapixel_mnist import (
        ...     MegapixelMNIST, MegapixelMNISTConfig)
        >>> config = MegapixelMNISTConfig(
        ...     width=100, height=100, scale=0.5, n_train=4, n_test=2)
        >>> data = MegapixelMNIST.generate(config, progress=False)
        >>> x_low, x_high, y = data.split("train").render(0)
        >>> x_low.shape, x_high.shape
        ((50, 50, 1), (100, 100, 1))
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
            checks.fail("config", "a MegapixelMNISTConfig", config, error=TypeError)
        x, y, is_test = digits.load_digits(config.source)
        pools = digits.digit_pools(y, is_test, config)
        described = {s: describe_split(s, pools[s], config, progress) for s in SPLITS}
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
        return self._splits[check_split(name)]

    def save(self, directory: str | os.PathLike) -> None:
        """Write the data set's description to ``directory`` (created if needed).

        Files: ``config.json`` (parameters), ``digits.npz`` (the digit table:
        ``pixels``, ``labels``, ``source_indices``) and ``train.npz`` /
        ``test.npz`` (``labels``, ``digit_indices``, ``positions``,
        ``noise_strokes``). No file needs pickle to be read.
        """
        table = {
            "pixels": self.digit_pixels,
            "labels": self.digit_labels,
            "source_indices": self.digit_source_indices,
        }
        splits = {
            name: {key: getattr(split, key) for key in storage.SPLIT_ARRAYS}
            for name, split in self._splits.items()
        }
        storage.write(directory, self.config, table, splits)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> MegapixelMNIST:
        """Read a data set written by :meth:`save`; rendering needs no digit source."""
        config, table, splits = storage.read(directory)
        return cls(
            config, table["pixels"], table["labels"], table["source_indices"], splits
        )
