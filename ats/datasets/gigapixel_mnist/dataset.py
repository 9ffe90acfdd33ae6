"""A Gigapixel MNIST data set on disk: writing, loading, sources, batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ... import checks
from ...data.tiff import TiffSource
from ...lazy import SourceSequence
from ..megapixel_mnist import SPLITS, MegapixelMNIST
from ..megapixel_mnist.storage import read_config
from .config import (
    FORMAT_VERSION,
    META,
    GigapixelMNISTConfig,
)
from .rendering import glyphs, write_tiff


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
        if (directory / META).is_file():
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
                f"{str(directory)!r} is not empty and holds no {META}: "
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
                write_tiff(data.files(split)[i], glyphs(layout, i), config)
        meta = {
            "format_version": FORMAT_VERSION,
            "config": config.to_dict(),
            "level_sides": config.level_sides,
            "low_level": config.low_level,
        }
        (directory / META).write_text(json.dumps(meta, indent=2) + "\n")
        return data

    @classmethod
    def load(cls, directory) -> GigapixelMNIST:
        """Open a data set written by :meth:`write`; checks its files exist."""
        directory = Path(directory)
        meta_path = directory / META
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{meta_path}: no such file; is {directory} a Gigapixel "
                "MNIST directory (written by `ats gigapixel make-data`)?"
            )
        config = read_config(
            meta_path,
            GigapixelMNISTConfig,
            FORMAT_VERSION,
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
        return glyphs(self.description.split(split), i)

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
