"""Images of different sizes in one batch: buckets, supports, wide rows.

Checks that ``BucketedSequence`` forms a bounded number of batch shapes with
weightless fillers and a seeded per-epoch shuffle; that a lazy model fed by
it never samples outside an image's own area or mask (over many draws);
that an image's attention and its patches' full-resolution positions do not
depend on what it is batched with and follow its own scale; and that ``fit``
works with one compiled step per bucket shape.
"""

import math

import keras
import numpy as np
import pytest
from keras import layers, ops

from ats.core.support import support_cells
from ats.data import ArraySource, SourceError
from ats.lazy import (
    BucketedSequence,
    FromSources,
    SourcePatches,
    bucket_shape,
    bucket_side,
    lazy_attention_sampling,
)
from ats.utils.layers import SampleSoftmax

PATCH = (8, 8)


class RecordingSource(ArraySource):
    """An ArraySource that logs the corners of every read."""

    def __init__(self, high, low, name=None):
        super().__init__(high, low, name)
        self.reads = []

    def _checked_corners(self, corners, size):
        # Every read (``read``, ``read_many``) checks its corners here first.
        self.reads.append(np.array(corners))
        return super()._checked_corners(corners, size)


def make_source(low_shape, scale, rng, value_range=(0.5, 1.0), name=None):
    """A source whose low view is ``low_shape`` and full resolution
    ``low_shape * scale`` (per axis), values in ``value_range``."""
    high_shape = tuple(side * s for side, s in zip(low_shape, scale))
    low = rng.uniform(*value_range, (*low_shape, 1)).astype(np.float32)
    high = low
    for axis, s in enumerate(scale):
        high = np.repeat(high, s, axis=axis)
    assert high.shape[:-1] == high_shape
    return RecordingSource(np.ascontiguousarray(high), low, name=name)


class TraceCounter(layers.Layer):
    """Identity that records every Python call of ``call`` in training mode
    (the shape of its input): once per trace of a compiled training step
    (JAX ``jit``, ``tf.function``), once per step eagerly (PyTorch). Keras'
    symbolic build of the model, which traces it once with
    ``training=False`` before fitting, is not a compiled step."""

    calls = []

    def call(self, x, training=None):
        if training:
            TraceCounter.calls.append(tuple(x.shape))
        return x


def build_model(attention_net, n_patches=4, replace=False, seed=3, counter=False):
    x_low = keras.Input((None, None, 1))
    x_high_ref = keras.Input((5,), dtype="int32")
    support = keras.Input((None, None))
    feature_net = keras.Sequential(
        [
            keras.Input((*PATCH, 1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.GlobalMaxPooling2D(),
        ],
        name="feature",
    )
    low = TraceCounter()(x_low) if counter else x_low
    features, attention_map, patches = lazy_attention_sampling(
        attention_net, feature_net, PATCH, n_patches, replace=replace, seed=seed
    )([low, x_high_ref, support])
    y = layers.Dense(2, activation="softmax", name="classifier")(features)
    inputs = [x_low, x_high_ref, support]
    return (
        keras.Model(inputs, [y, attention_map]),
        keras.Model(inputs, y),
    )


def conv_attention(seed=0):
    return keras.Sequential(
        [
            layers.Conv2D(4, 3, padding="same", activation="tanh"),
            layers.Conv2D(1, 3, padding="same"),
            SampleSoftmax(squeeze_channels=True),
        ],
        name="attention",
    )


def lazy_layer(model):
    return next(layer for layer in model.layers if isinstance(layer, SourcePatches))


# --- the ladder and the sequence --------------------------------------------


def test_bucket_ladder():
    sides = range(1, 3000)
    buckets = [bucket_side(side) for side in sides]
    assert all(b >= side for b, side in zip(buckets, sides))
    assert all(b == 16 for b, side in zip(buckets, sides) if side <= 16)
    assert all(b < side * 1.12 + 1 for b, side in zip(buckets, sides) if side > 16)
    assert buckets == sorted(buckets)
    ladder = sorted(set(buckets))
    # Geometric: about log(3000 / 16) / log(1.12) entries, not one per side.
    assert len(ladder) <= math.log(3000 / 16) / math.log(1.12) + 10
    assert bucket_shape((120, 90)) == (bucket_side(120), bucket_side(90))
    assert bucket_side(100, growth=2) == 128
    for bad in (1.0, 0.5, float("nan"), "1.1"):
        with pytest.raises((ValueError, TypeError), match="growth"):
            bucket_side(10, growth=bad)
    with pytest.raises(ValueError, match="side"):
        bucket_side(0)


def mixed_sources(rng, n=23):
    shapes = [tuple(int(s) for s in rng.integers(10, 60, size=2)) for _ in range(n)]
    return [
        make_source(shape, (2, 3), rng, name=f"s{i}") for i, shape in enumerate(shapes)
    ]


def test_batch_shapes_fillers_and_rows(rng):
    sources = mixed_sources(rng)
    y = np.arange(len(sources))
    batches = BucketedSequence(sources, y=y, batch_size=4)
    ladder = sorted({bucket_side(side) for side in range(10, 60)})
    assert 1 < len(batches.bucket_shapes) <= len(ladder) ** 2
    assert batches.bucket_shapes == sorted(
        {bucket_shape(s.low_shape[:-1]) for s in sources}
    )
    assert batches.describe().startswith(f"{len(batches.bucket_shapes)} step shapes")
    shapes, seen = set(), []
    for index in range(len(batches)):
        (x_low, refs, support), targets, weights = batches[index]
        items = batches.batch_items(index)
        read = batches.batch_indices(index)
        shapes.add(x_low.shape)
        assert x_low.shape[0] == refs.shape[0] == support.shape[0] == 4
        assert x_low.dtype == np.float32 and support.dtype == np.float32
        assert refs.dtype == np.int32 and refs.shape == (4, 5)
        np.testing.assert_array_equal(weights, (items >= 0).astype(np.float32))
        assert weights[0] == 1  # every batch has an image of its own
        assert set(read[items < 0]) <= set(read[items >= 0])  # fillers: copies
        np.testing.assert_array_equal(targets, y[read])
        for row, i in enumerate(read):
            source = sources[i]
            own = source.low_shape[:-1]
            assert batches.buckets[i] == x_low.shape[1:3]
            np.testing.assert_array_equal(refs[row], source.reference(own))
            np.testing.assert_array_equal(x_low[row, : own[0], : own[1]], source.low())
            # The padding repeats the image's edge pixels.
            padding = [(0, b - o) for b, o in zip(x_low.shape[1:3], own)]
            np.testing.assert_array_equal(
                x_low[row], np.pad(source.low(), [*padding, (0, 0)], "edge")
            )
            assert np.all(support[row, : own[0], : own[1]] == 1)
            assert support[row].sum() == own[0] * own[1]
        seen += items[items >= 0].tolist()
    assert len(shapes) == len(batches.bucket_shapes)
    assert sorted(seen) == list(range(len(sources)))  # each image once
    # shuffle=False: bucket by bucket, the given order within each, except
    # that the first two batches differ on both axes (TensorFlow's
    # signature, of (None, None) spatial sizes, is read from them).
    order = [batches.batch_items(i) for i in range(len(batches))]
    first, second = (batches.buckets[order[i][0]] for i in (0, 1))
    assert first[0] != second[0] and first[1] != second[1]
    assert first == batches.bucket_shapes[0]
    flat = [i for items in order[:1] + order[2:] for i in items if i >= 0]
    expected = [
        i
        for shape in batches.bucket_shapes
        for i in range(len(sources))
        if batches.buckets[i] == shape and i not in order[1]
    ]
    assert flat == expected
    # Without targets: the inputs only.
    (inputs,) = BucketedSequence(sources, batch_size=4)[0]
    assert len(inputs) == 3


def test_shuffle_is_seeded_per_epoch(rng):
    sources = mixed_sources(rng, n=40)

    def epoch_items(batches):
        return [batches.batch_items(i).tolist() for i in range(len(batches))]

    a = BucketedSequence(sources, batch_size=3, shuffle=True, seed=5)
    b = BucketedSequence(sources, batch_size=3, shuffle=True, seed=5)
    c = BucketedSequence(sources, batch_size=3, shuffle=True, seed=6)
    first = epoch_items(a)
    assert first == epoch_items(b)
    assert first != epoch_items(c)
    a.on_epoch_end()
    second = epoch_items(a)
    assert a.epoch == 1 and second != first
    for items in (first, second):
        real = sorted(i for batch in items for i in batch if i >= 0)
        assert real == list(range(len(sources)))
        for batch in items:  # every batch stays within one bucket
            assert len({a.buckets[i] for i in batch if i >= 0}) == 1
    b.epoch = 1  # a resumed run sees the same order
    assert epoch_items(b) == second


def test_masks_and_bad_input(rng):
    sources = [make_source((12, 20), (2, 2), rng), make_source((30, 18), (2, 2), rng)]
    mask = np.zeros((12, 20), bool)
    mask[2:5, 3:9] = True
    batches = BucketedSequence(sources, supports=[mask, None], batch_size=2)
    for index in range(len(batches)):
        ((_, _, support),) = batches[index]
        for row, i in enumerate(batches.batch_items(index)):
            if i == 0:
                assert support[row].sum() == mask.sum()
                assert np.all(support[row, :12, :20] == mask)
    with pytest.raises(SourceError, match="empty"):
        BucketedSequence(sources, supports=[np.zeros((12, 20), bool), None])
    with pytest.raises(SourceError, match=r"spatial shape of its low view \(12, 20\)"):
        BucketedSequence(sources, supports=[np.ones((20, 12), bool), None])
    with pytest.raises(ValueError, match="supports"):
        BucketedSequence(sources, supports=[mask])
    with pytest.raises(ValueError, match="`y` has 1 entries"):
        BucketedSequence(sources, y=[1])
    other = ArraySource(np.zeros((40, 40, 1), np.float64), np.zeros((10, 10, 1)))
    with pytest.raises(SourceError, match="dtype"):
        BucketedSequence([sources[0], other])
    three = ArraySource(np.zeros((40, 40, 3), np.float32), np.zeros((10, 10, 3), "f4"))
    with pytest.raises(SourceError, match="channel"):
        BucketedSequence([sources[0], three])
    with pytest.raises(SourceError, match="patch_size"):
        BucketedSequence(sources, patch_size=(64, 64))
    with pytest.raises(ValueError, match="use_multiprocessing"):
        BucketedSequence(sources, use_multiprocessing=True)
    with pytest.raises(TypeError, match=r"sources\[1\]"):
        BucketedSequence([sources[0], "file.png"])
    with pytest.raises(IndexError):
        batches[len(batches)]


def test_wide_reference_rows(rng):
    source = make_source((10, 15), (3, 2), rng)
    assert source.reference().tolist() == [source.id, 30, 30]
    assert source.reference((10, 15)).tolist() == [source.id, 30, 30, 10, 15]
    with pytest.raises(ValueError, match="low_shape"):
        source.reference((10,))
    with pytest.raises(ValueError, match="low_shape"):
        source.reference((0, 3))
    with pytest.raises(ValueError, match="x_high_ref"):
        FromSources([np.zeros((1, 8, 8, 1), "float32"), np.zeros((1, 4), "int32")])


# --- the model on mixed sizes ----------------------------------------------


def adversarial_attention():
    """Attention that prefers dark pixels: the padding and the masked-out
    holes (value 0), so an unrestricted model would sample them."""
    return keras.Sequential(
        [
            layers.Conv2D(1, 1, kernel_initializer=keras.initializers.Constant(-10.0)),
            SampleSoftmax(squeeze_channels=True),
        ],
        name="attention",
    )


def test_never_samples_outside_an_image_or_its_mask(rng):
    specs = [
        ((20, 30), (3, 2)),
        ((18, 27), (2, 4)),
        ((21, 31), (5, 3)),
        ((11, 16), (4, 4)),
        ((9, 14), (6, 2)),
        ((16, 10), (2, 2)),
    ]
    sources = [make_source(low, scale, rng) for low, scale in specs]
    masks = []
    for source in sources:
        h, w = source.low_shape[:-1]
        mask = np.ones((h, w), bool)
        mask[h // 3 : 2 * h // 3, w // 4 : 3 * w // 4] = False  # a hole
        source._low[~mask] = 0.0  # dark: attractive to the attention
        masks.append(mask)
    n_patches, calls = 25, 14
    model, _ = build_model(adversarial_attention(), n_patches, replace=True)
    batches = BucketedSequence(sources, supports=masks, batch_size=3)
    assert len(batches.bucket_shapes) == 3

    # The unrestricted attention puts most of its mass off the support, so
    # a broken restriction would be caught: P(no bad draw) <= 0.5 ** 300.
    attention_net = model.get_layer("attention")
    for index in range(len(batches)):
        ((x_low, _, support),) = batches[index]
        raw = ops.convert_to_numpy(attention_net(x_low))
        valid = ops.convert_to_numpy(support_cells(support, raw.shape[1:])) > 0.5
        assert np.all((raw * ~valid).sum(axis=(1, 2)) > 0.5)

    for _ in range(calls):
        for index in range(len(batches)):
            (inputs,) = batches[index]
            _, attention = model.predict_on_batch(list(inputs))
            attention = ops.convert_to_numpy(attention)
            assert np.all(attention[inputs[2] == 0] == 0)
    draws = 0
    for source, mask in zip(sources, masks):
        high = np.asarray(source.spatial_shape)
        own = np.asarray(source.low_shape[:-1])
        scale = high / own
        corners = np.concatenate(source.reads)
        draws += len(corners)
        centres = corners + np.asarray(PATCH) / 2
        assert np.all(centres >= 0) and np.all(centres < high)
        cells = np.round(centres / scale - 0.5).astype(int)
        assert np.all(cells >= 0) and np.all(cells < own)
        assert np.all(mask[cells[:, 0], cells[:, 1]])
    assert draws >= 2000


@pytest.mark.parametrize("mode", ["top_k", "same_seed"])
def test_alone_or_batched_the_same_attention_and_positions(rng, mode):
    """Image ``a`` alone (padded with its own fillers) and among images of
    other sizes in its bucket: the same attention over its own cells and the
    same full-resolution corners, at its own scale."""
    specs = [((20, 30), (7, 5)), ((19, 28), (4, 4)), ((21, 31), (3, 3))]
    sources = [make_source(low, scale, rng, (0, 1)) for low, scale in specs]
    assert len({bucket_shape(s.low_shape[:-1]) for s in sources}) == 1
    model, _ = build_model(conv_attention(), n_patches=6, seed=11)
    sampler = lazy_layer(model)
    sampler.deterministic = mode == "top_k"
    state = ops.convert_to_numpy(sampler.seed_generator.state)

    def run(batch_sources):
        for source in sources:
            source.reads = []
        sampler.seed_generator.state.assign(state)
        (inputs,) = BucketedSequence(batch_sources, batch_size=3)[0]
        _, attention = model.predict_on_batch(list(inputs))
        return ops.convert_to_numpy(attention)[0], sources[0].reads[0]

    alone_attention, alone_corners = run(sources[:1])
    mixed_attention, mixed_corners = run(sources)
    own = sources[0].low_shape[:-1]
    np.testing.assert_allclose(
        alone_attention[: own[0], : own[1]],
        mixed_attention[: own[0], : own[1]],
        rtol=1e-5,
        atol=1e-9,
    )
    np.testing.assert_array_equal(alone_corners, mixed_corners)
    if mode == "top_k":
        # The most attended cells, at the image's own scale (7, 5).
        flat = np.argsort(-mixed_attention.reshape(-1), kind="stable")[:6]
        cells = np.stack(np.unravel_index(flat, mixed_attention.shape), axis=-1)
        expected = np.round((cells + 0.5) * np.array([7, 5]) - np.array(PATCH) / 2)
        np.testing.assert_array_equal(mixed_corners, expected.astype(int))


def test_fit_compiles_one_step_per_bucket_shape(rng, backend):
    specs = [
        ((20, 30), (2, 2)),
        ((18, 27), (3, 2)),
        ((40, 12), (2, 3)),
        ((38, 11), (2, 2)),
        ((12, 12), (3, 3)),
    ]
    sources = [make_source(low, scale, rng, (0, 1)) for low, scale in specs * 2]
    y = np.arange(len(sources)) % 2
    batches = BucketedSequence(sources, y=y, batch_size=2, shuffle=True, seed=1)
    assert len(batches.bucket_shapes) == 4
    _, classifier = build_model(conv_attention(), n_patches=3, counter=True)
    classifier.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    TraceCounter.calls.clear()  # forget the symbolic build
    history = classifier.fit(batches, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    shapes = [shape[1:3] for shape in TraceCounter.calls]
    if backend == "jax":
        # jit traces the step once per input shape: TraceCounter.call runs
        # at trace time only, so 4 bucket shapes, 4 traces over 3 epochs.
        assert sorted(shapes) == batches.bucket_shapes
    elif backend == "tensorflow":
        # The tf.function is traced for unknown sizes (None), so the number
        # of traces does not grow with the buckets: at most 2 (its first
        # trace is repeated when it creates the optimizer's variables).
        assert set(shapes) == {(None, None)} and len(shapes) <= 2
    else:  # PyTorch runs eagerly: every step
        assert set(shapes) == set(batches.bucket_shapes)
        assert len(shapes) == 3 * len(batches)


@pytest.mark.parametrize(
    "replace,deterministic", [(False, False), (True, False), (False, True)]
)
def test_sampling_with_unknown_extents_draws_what_sample_draws(
    rng, replace, deterministic
):
    """The path SourcePatches takes when the attention's spatial sizes are
    unknown while tracing (TensorFlow, several buckets) draws the positions
    and probabilities ``ats.core.sample`` draws from the same seed state."""
    from ats.core import sample
    from ats.lazy.layers import _sample_flat

    attention = rng.random((3, 5, 7)).astype(np.float32)
    attention /= attention.sum(axis=(1, 2), keepdims=True)
    layer = SourcePatches(
        6, PATCH, replace=replace, deterministic=deterministic, seed=4
    )
    state = ops.convert_to_numpy(layer.seed_generator.state)
    extents = tuple(ops.convert_to_tensor(e, "int32") for e in (5, 7))
    positions, sampled = _sample_flat(layer, attention, extents)
    layer.seed_generator.state.assign(state)
    expected_positions, expected_sampled = sample(
        6,
        attention,
        replace=replace,
        deterministic=deterministic,
        seed=layer.seed_generator,
    )
    np.testing.assert_array_equal(
        ops.convert_to_numpy(positions), ops.convert_to_numpy(expected_positions)
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(sampled), ops.convert_to_numpy(expected_sampled)
    )
