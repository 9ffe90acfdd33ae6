"""Batches of images of different sizes: low views padded to a few buckets.

An image's low view keeps its own shape and aspect ratio; a batch stacks
images of one *bucket*, each padded (bottom and right, repeating its edge
pixels) to the bucket's shape. The bucket depends only on the image's own
low shape (the first entry of a fixed geometric ladder at least as large as
each side, or the smallest of a fixed list of shapes, ``choose_buckets``),
so an image is always padded the same way, whatever it is batched with,
and the number of distinct batch shapes (compiled steps) is the number of
buckets in use. A *support* marks each image's own pixels (and its foreground mask),
so that the model never samples the padding (``ats.core.RestrictAttention``);
*wide* reference rows carry each image's own low shape, so that positions
map to full-resolution pixels with its own scale (``ats.lazy.FromSources``).
"""

import math

import keras
import numpy as np

from .. import checks
from ..data.ordering import ShuffledSequence
from ..data.sources import PatchSource, SourceError

__all__ = ["BucketedSequence", "bucket_shape", "bucket_side", "choose_buckets"]


def bucket_side(side, growth=1.12, smallest=16):
    """The bucket of one side: the first entry of the ladder that is >= it.

    The ladder is ``smallest``, then each entry ``ceil(previous * growth)``
    (at least ``previous + 1``): a side is padded by less than a factor
    ``growth`` (beyond ``smallest``).

    Args:
        side: int >= 1, a side of a low view, in pixels.
        growth: float > 1, the ratio of consecutive entries of the ladder.
        smallest: int >= 1, the ladder's first entry (smaller sides are
            padded to it).

    Returns:
        int, the padded side.

    Example:
        >>> from ats.lazy import bucket_side
        >>> [bucket_side(s) for s in (5, 16, 17, 19, 100)]
        [16, 16, 18, 21, 104]
    """
    where = "bucket_side"
    side = checks.integer("side", side, minimum=1, where=where)
    smallest = checks.integer("smallest", smallest, minimum=1, where=where)
    growth = _growth(growth, where)
    value = smallest
    while value < side:
        value = max(value + 1, math.ceil(round(value * growth, 9)))
    return value


def bucket_shape(low_spatial_shape, growth=1.12, smallest=16):
    """The bucket of a low view: ``bucket_side`` of every side.

    Args:
        low_spatial_shape: tuple of ints, the spatial shape of an image's
            own low view.
        growth: float > 1, see ``bucket_side``.
        smallest: int >= 1, see ``bucket_side``.

    Returns:
        tuple of ints, the shape the low view is padded to.

    Example:
        >>> from ats.lazy import bucket_shape
        >>> bucket_shape((120, 90))
        (132, 92)
    """
    shape = checks.int_tuple("low_spatial_shape", low_spatial_shape, where="bucket")
    return tuple(bucket_side(side, growth, smallest) for side in shape)


def choose_buckets(low_shapes, max_shapes=8, growth=1.12, smallest=16):
    """At most ``max_shapes`` bucket shapes that hold every low view.

    Starts from the ladder buckets of the shapes (``bucket_shape``) and
    merges, while there are more than ``max_shapes``, the two whose merged
    shape (the larger side on every axis) adds the fewest padded pixels over
    the images they hold. Deterministic: the same shapes give the same
    buckets, so a run and its evaluation pad every image the same way.

    Args:
        low_shapes: sequence of spatial shapes of the images' own low views.
        max_shapes: int >= 1, the most bucket shapes (compiled steps).
        growth: float > 1, the ladder's ratio (``bucket_side``).
        smallest: int >= 1, the ladder's first entry (``bucket_side``).

    Returns:
        Sorted list of bucket shapes (tuples).

    Example:
        >>> from ats.lazy import choose_buckets
        >>> choose_buckets([(40, 30), (38, 29), (20, 60), (21, 58)], 2)
        [(21, 65), (40, 31)]
        >>> choose_buckets([(40, 30), (38, 29), (20, 60), (21, 58)], 1)
        [(40, 65)]
    """
    where = "choose_buckets"
    max_shapes = checks.integer("max_shapes", max_shapes, minimum=1, where=where)
    counts = {}
    for shape in low_shapes:
        bucket = bucket_shape(shape, growth, smallest)
        counts[bucket] = counts.get(bucket, 0) + 1
    if not counts:
        raise ValueError(f"{where}: `low_shapes` is empty")
    buckets = sorted(counts)
    weights = [counts[b] for b in buckets]
    while len(buckets) > max_shapes:
        shapes = np.asarray(buckets)
        counts_array = np.asarray(weights, dtype=np.float64)
        areas = np.prod(shapes, axis=1) * counts_array
        merged = np.maximum(shapes[:, None, :], shapes[None, :, :])
        cost = np.prod(merged, axis=2) * (counts_array[:, None] + counts_array)
        cost -= areas[:, None] + areas[None, :]
        np.fill_diagonal(cost, np.inf)
        i, j = np.unravel_index(np.argmin(cost), cost.shape)
        union = tuple(int(v) for v in merged[i, j])
        weight = weights[i] + weights[j]
        keep = [k for k in range(len(buckets)) if k not in (i, j)]
        pairs = {buckets[k]: weights[k] for k in keep}
        pairs[union] = pairs.get(union, 0) + weight
        buckets = sorted(pairs)
        weights = [pairs[b] for b in buckets]
    return buckets


def _fitting_bucket(shape, buckets, growth):
    """The smallest of ``buckets`` (by pixels) that holds ``shape``; its
    ladder bucket if none does."""
    fitting = [b for b in buckets if all(s <= d for s, d in zip(shape, b))]
    if not fitting:
        return bucket_shape(shape, growth)
    return min(fitting, key=lambda b: (math.prod(b), b))


def _growth(growth, where):
    if (
        isinstance(growth, bool)
        or not isinstance(growth, (int, float, np.integer, np.floating))
        or not growth > 1
        or not math.isfinite(growth)
    ):
        checks.fail("growth", "a finite number > 1", growth, where)
    return float(growth)


class BucketedSequence(ShuffledSequence):
    """Feed ``PatchSource`` s of any sizes to a ``lazy_attention_sampling``
    model called on ``[x_low, x_high_ref, support]``.

    The sources are grouped by bucket (``bucket_shape`` of their own low
    views); every batch holds sources of one bucket, each low view
    edge-padded (bottom and right) to the bucket's shape, so an image is
    padded the same way whatever it is batched with. A bucket's last,
    incomplete batch is filled up to ``batch_size`` with copies of its own
    images whose sample weight is 0 (``batch_items`` marks them -1), so
    every batch has ``batch_size`` rows and the model sees
    ``len(bucket_shapes)`` batch shapes (JAX compiles one step per shape).

    Batch ``i`` is ``((x_low, x_high_ref, support), y, sample_weight)``
    (``((x_low, x_high_ref, support),)`` without targets):

    * ``x_low`` ``(B, *bucket, C)`` (or ``(B, C, *bucket)``) float32, the
      padded low views;
    * ``x_high_ref`` ``(B, 1 + 2 * ndim)`` int32, wide reference rows
      ``[id, *spatial shape, *own low shape]``
      (``PatchSource.reference(low_shape)``): patches are read at each
      image's own scale;
    * ``support`` ``(B, *bucket)`` float32, 1 inside the image and its mask,
      0 elsewhere;
    * ``y`` ``(B,)`` the targets, ``sample_weight`` ``(B,)`` float32, 1 for
      the images and 0 for the fillers.

    Keras weighs the loss and the ``weighted_metrics`` of ``compile`` by
    ``sample_weight`` (its ``metrics`` are not weighted: give accuracy and
    the like as ``weighted_metrics``, or count only the rows ``batch_items``
    marks as real). The default loss reduction divides by the batch size,
    fillers included.

    Args:
        sources: sequence of ``PatchSource`` with the same dtype and number
            of channels (any shapes).
        y: optional targets, one per source.
        supports: optional sequence of bool arrays, one per source, of its
            low view's spatial shape: the foreground masks (None: every
            image whole). An empty mask is refused.
        batch_size: int, rows per batch.
        patch_size: optional tuple, the model's patch size, checked against
            every source.
        shuffle: bool, every epoch (seeded by ``seed`` and the epoch) shuffle
            the sources within their buckets and the order of the batches;
            False: bucket by bucket (in the order of ``bucket_shapes``), the
            sources in the given order within each. Either way the first
            two batches come from buckets that differ on every axis on which
            any buckets differ (when two such exist; always with 2 spatial
            axes), one of them moved to the front: TensorFlow's step
            signature is read from them, and an axis of one size in both
            would refuse later batches of another.
        seed: int >= 0, seed of the shuffling.
        growth: float > 1, the ladder's ratio (``bucket_side``): a larger
            one gives fewer buckets and more padding.
        buckets: optional list of bucket shapes (e.g. of
            ``choose_buckets``): each image is padded to the smallest that
            holds it (its ladder bucket if none does). Default: every image
            its ladder bucket.
        data_format: defaults to ``keras.config.image_data_format()``.
        **kwargs: ``workers``, ``max_queue_size`` of ``PyDataset``
            (threads; ``use_multiprocessing`` is refused).

    Attributes:
        bucket_shapes: sorted list of the distinct bucket shapes in use.
        buckets: list, per source, its bucket shape.

    Example:
        >>> import numpy as np
        >>> from ats.data import ArraySource
        >>> from ats.lazy import BucketedSequence
        >>> sizes = [(400, 300), (380, 290), (200, 600)]
        >>> sources = [ArraySource(np.zeros((*s, 3), "float32"),
        ...                        low=np.zeros((s[0] // 10, s[1] // 10, 3),
        ...                                     "float32")) for s in sizes]
        >>> batches = BucketedSequence(sources, y=[0, 1, 1], batch_size=2)
        >>> batches.describe()
        '2 step shapes (low views padded to 21x65, 40x31)'
        >>> (x_low, x_high_ref, support), y, weight = batches[0]
        >>> x_low.shape, x_high_ref[0, 1:].tolist(), weight.tolist()
        ((2, 21, 65, 3), [200, 600, 20, 60], [1.0, 0.0])
        >>> batches.batch_items(0).tolist(), batches.batch_items(1).tolist()
        ([2, -1], [0, 1])
    """

    def __init__(
        self,
        sources,
        y=None,
        supports=None,
        batch_size=8,
        patch_size=None,
        shuffle=False,
        seed=0,
        growth=1.12,
        data_format=None,
        buckets=None,
        **kwargs,
    ):
        where = "BucketedSequence"
        if kwargs.get("use_multiprocessing"):
            raise ValueError(
                f"{where}: `use_multiprocessing=True` is not supported (open "
                "files cannot be shared with forked workers); use threads "
                "(`workers`)"
            )
        self.sources = list(sources)
        if not self.sources:
            raise ValueError(f"{where}: `sources` is empty")
        for i, source in enumerate(self.sources):
            if not isinstance(source, PatchSource):
                raise TypeError(
                    f"{where}: sources[{i}] must be a PatchSource, got "
                    f"{type(source).__name__}"
                )
        first = self.sources[0]
        for source in self.sources[1:]:
            if (
                source.dtype != first.dtype
                or source.shape[-1] != first.shape[-1]
                or len(source.shape) != len(first.shape)
            ):
                raise SourceError(
                    f"{source.name}: it has {len(source.shape) - 1} spatial "
                    f"dimension(s), {source.shape[-1]} channel(s) and dtype "
                    f"{source.dtype}, but {first.name} has "
                    f"{len(first.shape) - 1}, {first.shape[-1]} and "
                    f"{first.dtype}; a batch stacks low views, so they must "
                    "agree"
                )
        if patch_size is not None:
            for source in self.sources:
                source.check_patch_size(patch_size)
        self.growth = _growth(growth, where)
        self.data_format = data_format or keras.config.image_data_format()
        self.y = None if y is None else np.asarray(y)
        if self.y is not None and len(self.y) != len(self.sources):
            raise ValueError(
                f"{where}: `y` has {len(self.y)} entries for "
                f"{len(self.sources)} sources"
            )
        self.supports = self._check_supports(supports)
        if buckets is None:
            self.buckets = [
                bucket_shape(source.low_shape[:-1], self.growth)
                for source in self.sources
            ]
        else:
            shapes = [tuple(int(s) for s in b) for b in buckets]
            self.buckets = [
                _fitting_bucket(source.low_shape[:-1], shapes, self.growth)
                for source in self.sources
            ]
        self.bucket_shapes = sorted(set(self.buckets))
        self._members = [
            np.asarray([i for i, b in enumerate(self.buckets) if b == shape])
            for shape in self.bucket_shapes
        ]
        super().__init__(
            len(self.sources),
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            **kwargs,
        )

    def _check_supports(self, supports):
        if supports is None:
            return None
        supports = list(supports)
        if len(supports) != len(self.sources):
            raise ValueError(
                f"BucketedSequence: `supports` has {len(supports)} entries for "
                f"{len(self.sources)} sources"
            )
        checked = []
        for source, support in zip(self.sources, supports):
            if support is None:
                checked.append(None)
                continue
            support = np.asarray(support)
            if support.shape != source.low_shape[:-1]:
                raise SourceError(
                    f"{source.name}: its support (mask) must have the spatial "
                    f"shape of its low view {source.low_shape[:-1]}, got "
                    f"{support.shape}"
                )
            support = support.astype(bool)
            if not support.any():
                raise SourceError(
                    f"{source.name}: its support (mask) is empty: no position "
                    "could be sampled"
                )
            checked.append(support)
        return checked

    @property
    def epoch(self):
        """int, the current epoch (0 first); setting it draws its order."""
        return self._epoch

    @epoch.setter
    def epoch(self, value):
        self._epoch = checks.integer("epoch", value, minimum=0)
        rng = np.random.default_rng([self.seed, self._epoch]) if self.shuffle else None
        batches = []
        for members in self._members:
            if rng is not None:
                members = rng.permutation(members)
            for start in range(0, len(members), self.batch_size):
                items = members[start : start + self.batch_size]
                n_real = len(items)
                fill = np.resize(items, self.batch_size)
                batches.append((fill, n_real))
        if rng is not None:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        self._batches = self._lead_with_a_differing_pair(batches)
        self._order = np.concatenate([b[0][: b[1]] for b in batches])

    def _lead_with_a_differing_pair(self, batches):
        """Move to positions 0 and 1 two batches whose buckets differ on
        every axis on which buckets differ at all (if there are such).

        Keras builds a TensorFlow step's input signature from a
        ``PyDataset``'s first two batches: an axis of the same size in both
        would be fixed, and a later batch of another size on it refused.
        """
        shapes = [self.buckets[items[0]] for items, _ in batches]
        distinct = sorted(set(shapes))
        ndim = len(distinct[0])
        varying = [a for a in range(ndim) if len({s[a] for s in distinct}) > 1]
        if not varying or all(shapes[0][a] != shapes[1][a] for a in varying):
            return batches
        first = shapes[0]
        partners = [s for s in distinct if all(s[a] != first[a] for a in varying)]
        if partners:
            pair = (first, partners[0])
        else:  # only with 3 spatial axes: take any pair that has one
            pair = next(
                (
                    (a, b)
                    for a in distinct
                    for b in distinct
                    if all(a[k] != b[k] for k in varying)
                ),
                None,
            )
            if pair is None:
                return batches
        lead = [shapes.index(pair[0]), shapes.index(pair[1])]
        return [batches[i] for i in lead] + [
            batch for i, batch in enumerate(batches) if i not in lead
        ]

    def __len__(self):
        return len(self._batches)

    def _batch(self, index):
        if not 0 <= int(index) < len(self):
            raise IndexError(
                f"batch index {index} out of range for {len(self)} batches"
            )
        return self._batches[int(index)]

    def batch_indices(self, index):
        """The sources batch ``index`` reads (fillers included, as the
        copies they are), ``(batch_size,)`` int array."""
        return self._batch(index)[0]

    def batch_items(self, index):
        """The sources of batch ``index``, -1 for the fillers (which rows of
        a prediction are real).

        Returns:
            ``(batch_size,)`` int array.
        """
        items, n_real = self._batch(index)
        out = items.copy()
        out[n_real:] = -1
        return out

    def sample_weights(self, index):
        """``(batch_size,)`` float32: 1 for the batch's images, 0 for the
        fillers."""
        _, n_real = self._batch(index)
        weights = np.zeros(self.batch_size, np.float32)
        weights[:n_real] = 1.0
        return weights

    def describe(self):
        """One line: how many step shapes and which.

        Returns:
            str, e.g. ``"2 step shapes (low views padded to 16x16, 18x16)"``.
        """
        shapes = ", ".join(
            "x".join(str(s) for s in shape) for shape in self.bucket_shapes
        )
        n = len(self.bucket_shapes)
        return f"{n} step shape{'s' if n != 1 else ''} (low views padded to {shapes})"

    def __getitem__(self, index):
        items = self.batch_indices(index)
        bucket = self.buckets[items[0]]
        channels = self.sources[0].shape[-1]
        x_low = np.zeros((len(items), *bucket, channels), np.float32)
        support = np.zeros((len(items), *bucket), np.float32)
        refs = []
        for row, i in enumerate(items):
            source = self.sources[i]
            low = np.asarray(source.low())
            own = low.shape[:-1]
            inner = tuple(slice(0, s) for s in own)
            # Edge-replicated: no artificial edge along the image's border.
            padding = [(0, b - s) for b, s in zip(bucket, own)] + [(0, 0)]
            x_low[row] = np.pad(low, padding, mode="edge")
            mask = None if self.supports is None else self.supports[i]
            support[(row, *inner)] = 1.0 if mask is None else mask
            refs.append(source.reference(own))
        if self.data_format == "channels_first":
            x_low = np.moveaxis(x_low, -1, 1)
        x = (x_low, np.stack(refs), support)
        if self.y is None:
            return (x,)
        return x, self.y[items], self.sample_weights(index)
