"""One split of a data set: the arrays that describe its images, rendered on demand."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

from ... import checks
from .arrays import BATCH_BUFFERS, BufferPool
from .config import DIGIT_SIZE, VIEWS, check_views
from .rendering import downscale, draw_canvas, render_canvas

__all__ = ["MegapixelMNISTSplit"]


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
            checks.fail("rows", "a slice", rows, error=TypeError)
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
        canvas = render_canvas(
            self.config.height,
            self.config.width,
            self._digit_pixels[self.digit_indices[i]],
            self.positions[i],
            self.noise_strokes[i],
        )
        return canvas[:, :, None]

    def _draw_high(self, i: int, canvas: np.ndarray) -> None:
        """Draw the full-resolution view of image ``i`` (a valid index) on
        ``canvas``, a zero float32 (height, width) array, in place."""
        draw_canvas(
            canvas,
            self._digit_pixels[self.digit_indices[i]],
            self.positions[i],
            self.noise_strokes[i],
        )

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
        self,
        indices: Sequence[int],
        views: Sequence[str] = VIEWS,
        pool: BufferPool | None = BATCH_BUFFERS,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Render several images.

        Args:
            indices: Image indices, length B.
            views: Views to return, in order, from "low" and "high".
            pool: The :class:`.arrays.BufferPool` whose memory the views'
                arrays take (reused once nothing holds them any more), or
                None for new memory (e.g. for arrays kept for long).

        Returns:
            ``(xs, y)``: ``xs`` holds one float32 array per view, (B, h, w, 1)
            for "low" and (B, height, width, 1) for "high", its data aligned
            for the backends to take it without a copy (:mod:`.arrays`);
            ``y`` is (B,) int32.
        """
        views = check_views(views)
        indices = [self._index(i) for i in indices]
        pool = BufferPool(max_buffers=0) if pool is None else pool
        shapes = {"low": self.config.low_shape, "high": self.config.high_shape}
        # The high views are drawn in place, on zeros; the low ones overwrite.
        xs = {
            v: (pool.zeros if v == "high" else pool.empty)((len(indices),) + shapes[v])
            for v in views
        }
        for b, i in enumerate(indices):
            if "high" in xs:
                x_high = xs["high"][b]
                self._draw_high(i, x_high[:, :, 0])
            else:
                x_high = self.render_high(i)
            if "low" in xs:
                xs["low"][b] = downscale(x_high, shapes["low"][:2])
        y = self.labels[indices].astype(np.int32)
        return [xs[v] for v in views], y
