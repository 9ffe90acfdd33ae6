"""``SamplePatches`` and ``Expectation``: mapping, shapes, seeds, bad input."""

import keras
import numpy as np
import pytest
from autodiff import gradients
from keras import ops

from ats.core import Expectation, SamplePatches, sample
from ats.data import FromTensors


def coordinate_image(batch, height, width):
    """x[b, i, j] = (i, j): a patch's pixel tells where it came from."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    image = np.stack([rows, cols], axis=-1).astype("float32") + 1
    return np.tile(image[None], (batch, 1, 1, 1))


@pytest.mark.parametrize("receptive_field", [0, 4])
def test_positions_map_to_the_documented_corners(receptive_field):
    low, high, space, patch = (24, 32), (96, 160), (5, 7), (9, 8)
    cells = [(0, 0), (4, 6), (2, 3)]
    attention = np.zeros((len(cells), *space), dtype="float32")
    for b, cell in enumerate(cells):
        attention[(b, *cell)] = 1
    x_low = np.zeros((len(cells), *low, 1), dtype="float32")
    x_high = coordinate_image(len(cells), *high)

    layer = SamplePatches(1, patch, receptive_field=receptive_field)
    patches, sampled = layer([x_low, x_high, attention])
    patches = ops.convert_to_numpy(patches)

    np.testing.assert_array_equal(ops.convert_to_numpy(sampled), 1)
    for b, cell in enumerate(cells):
        centre_low = receptive_field / 2 + (np.array(cell) + 0.5) * (
            np.subtract(low, receptive_field) / space
        )
        centre_high = centre_low * np.divide(high, low)
        corner = np.round(centre_high - np.divide(patch, 2)).astype(int)
        corner_pixel = patches[b, 0, 0, 0] - 1
        np.testing.assert_array_equal(corner_pixel, corner)


@pytest.mark.parametrize("receptive_field", [0, 4])
def test_patch_corners_are_where_call_reads(receptive_field, rng):
    """``patch_corners`` gives the corners of the patches ``call`` reads:
    every patch equals ``x_high`` sliced at its corner (zeros outside)."""
    low, high, space, patch = (24, 32), (96, 160), (5, 7), (9, 8)
    x_low = np.zeros((2, *low, 1), dtype="float32")
    x_high = coordinate_image(2, *high)
    attention = rng.dirichlet(np.ones(np.prod(space)), size=2).astype("float32")
    attention = attention.reshape(2, *space)
    layer = SamplePatches(6, patch, receptive_field=receptive_field, seed=3)
    positions, _ = sample(6, attention, seed=keras.random.SeedGenerator(3))
    patches, _ = layer([x_low, x_high, attention])
    corners = layer.patch_corners(x_low, x_high, space, positions)
    assert tuple(corners.shape) == (2, 6, 2)
    assert keras.backend.standardize_dtype(corners.dtype) == "int32"
    corners, patches = ops.convert_to_numpy(corners), ops.convert_to_numpy(patches)
    for b in range(2):
        for i in range(6):
            expected = np.zeros((*patch, 2), "float32")
            (r, c), (h, w) = corners[b, i], patch
            top, left = max(r, 0), max(c, 0)
            window = x_high[b, top : r + h, left : c + w]
            expected[
                top - r : top - r + window.shape[0],
                left - c : left - c + window.shape[1],
            ] = window
            np.testing.assert_array_equal(patches[b, i], expected)


def test_shapes_dtypes_and_overhang_zeros(rng):
    x_low = rng.random((2, 10, 10, 3)).astype("float32")
    x_high = rng.integers(1, 255, size=(2, 40, 40, 3)).astype("uint8")
    attention = np.zeros((2, 10, 10), dtype="float32")
    attention[:, 0, 0] = 1  # corner cell: the patch overhangs the border
    patches, sampled = SamplePatches(1, (12, 12))([x_low, x_high, attention])
    assert tuple(patches.shape) == (2, 1, 12, 12, 3)
    assert tuple(sampled.shape) == (2, 1)
    assert keras.backend.standardize_dtype(patches.dtype) == "uint8"
    patches = ops.convert_to_numpy(patches)
    assert np.all(patches[:, 0, :4, :4] == 0)
    assert np.all(patches[:, 0, 4:, 4:] > 0)


def test_channels_first(rng):
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        x_low = rng.random((2, 3, 10, 10)).astype("float32")
        x_high = rng.random((2, 3, 20, 20)).astype("float32")
        attention = rng.dirichlet(np.ones(100), size=2).reshape(2, 10, 10)
        layer = SamplePatches(4, (6, 6), seed=1)
        patches, _ = layer([x_low, x_high, attention.astype("float32")])
        assert tuple(patches.shape) == (2, 4, 3, 6, 6)
        inputs = [
            keras.Input((3, 10, 10)),
            keras.Input((3, 20, 20)),
            keras.Input((10, 10)),
        ]
        symbolic, _ = SamplePatches(4, (6, 6))(inputs)
        assert tuple(symbolic.shape) == (None, 4, 3, 6, 6)
    finally:
        keras.config.set_image_data_format(previous)


def test_one_dimensional_and_volumetric_inputs(rng):
    for low, high, space, patch in [
        ((16,), (64,), (8,), (5,)),
        ((6, 6, 6), (12, 12, 12), (3, 3, 3), (4, 4, 4)),
    ]:
        x_low = rng.random((2, *low, 1)).astype("float32")
        x_high = rng.random((2, *high, 2)).astype("float32")
        attention = rng.dirichlet(np.ones(int(np.prod(space))), size=2)
        attention = attention.reshape(2, *space).astype("float32")
        patches, _ = SamplePatches(3, patch)([x_low, x_high, attention])
        assert tuple(patches.shape) == (2, 3, *patch, 2)


def test_same_seed_same_samples_and_a_stream_per_layer(rng):
    x_low = rng.random((2, 8, 8, 1)).astype("float32")
    x_high = rng.random((2, 32, 32, 1)).astype("float32")
    attention = rng.dirichlet(np.ones(64), size=2).reshape(2, 8, 8)
    inputs = [x_low, x_high, attention.astype("float32")]

    def draws(layer):
        return ops.convert_to_numpy(layer(inputs)[0])

    first, second = SamplePatches(5, (4, 4), seed=3), SamplePatches(5, (4, 4), seed=3)
    np.testing.assert_array_equal(draws(first), draws(second))
    assert not np.array_equal(draws(first), draws(first))


def test_gradient_reaches_attention_but_not_x_high(rng):
    x_low = rng.random((1, 8, 8, 1)).astype("float32")
    x_high = rng.random((1, 16, 16, 1)).astype("float32")
    logits = rng.normal(size=(1, 8, 8)).astype("float32")
    layer = SamplePatches(3, (4, 4), seed=0)

    def objective(logits, x_high):
        attention = ops.reshape(ops.softmax(ops.reshape(logits, (1, 64))), (1, 8, 8))
        patches, sampled = layer([x_low, x_high, attention])
        features = ops.mean(patches, axis=(2, 3))
        return ops.sum(Expectation()([features, sampled]))

    _, (grad_logits, grad_high) = gradients(objective, logits, x_high)
    assert np.abs(grad_logits).sum() > 0
    np.testing.assert_array_equal(grad_high, 0)


def test_from_tensors_matches_the_layer(rng):
    x_low = rng.random((2, 12, 12, 1)).astype("float32")
    x_high = rng.random((2, 36, 48, 1)).astype("float32")
    samples = np.array([[[0, 0], [5, 5]], [[2, 3], [1, 4]]], dtype="int32")
    source = FromTensors([x_low, x_high])
    patches, corners = source.patches(samples, 1.0, (6, 6), (10, 10), (7, 7), 0, 1)
    corners = ops.convert_to_numpy(corners)
    expected = np.round((1 + (samples + 0.5) * 10 / 6) * np.array([3, 4]) - 3.5).astype(
        "int32"
    )
    np.testing.assert_array_equal(corners, expected)
    assert tuple(patches.shape) == (2, 2, 7, 7, 1)
    np.testing.assert_array_equal(ops.convert_to_numpy(source.data(1)), x_high)


def symbolic_inputs(low=(16, 16, 1), high=(64, 64, 1), attention=(16, 16)):
    return [keras.Input(low), keras.Input(high), keras.Input(attention)]


@pytest.mark.parametrize(
    "kwargs,inputs,error,match",
    [
        ({"n_patches": 2.5}, None, TypeError, "n_patches"),
        ({"n_patches": 0}, None, ValueError, "n_patches"),
        ({"n_patches": True}, None, TypeError, "n_patches"),
        ({"patch_size": (8, -1)}, None, ValueError, "patch_size"),
        ({"patch_size": 8}, None, TypeError, "patch_size"),
        ({"patch_size": (8, 8, 8)}, {}, ValueError, "patch_size"),
        ({"receptive_field": -2}, None, ValueError, "receptive_field"),
        ({"receptive_field": 1.5}, None, TypeError, "receptive_field"),
        ({"receptive_field": 16}, {}, ValueError, "receptive_field"),
        ({"n_patches": 300}, {}, ValueError, "n_patches"),
        ({}, {"attention": (16, 16, 1)}, ValueError, "channel axis"),
        ({}, {"attention": (16,)}, ValueError, "attention"),
        ({}, {"attention": (32, 32)}, ValueError, "must not exceed"),
        ({}, {"high": (64, 1)}, ValueError, "x_high"),
        (
            {},
            {"low": (16, 1), "high": (64, 1), "attention": (16,)},
            ValueError,
            "patch_size",
        ),
        ({}, {"low": (2, 2, 2, 2, 1)}, ValueError, "x_low"),
    ],
)
def test_bad_input_raises_at_build_time(kwargs, inputs, error, match):
    arguments = {"n_patches": 4, "patch_size": (8, 8), **kwargs}
    with pytest.raises(error, match=match):
        layer = SamplePatches(**arguments)
        if inputs is not None:
            layer(symbolic_inputs(**inputs))


def test_expectation_checks_its_inputs():
    with pytest.raises(ValueError, match="same number of samples"):
        Expectation()([keras.Input((5, 3)), keras.Input((4,))])
    with pytest.raises(ValueError, match="sampled_attention"):
        Expectation()([keras.Input((5, 3)), keras.Input((5, 1))])
    with pytest.raises(TypeError, match="replace"):
        Expectation(replace="no")


def test_layers_round_trip_through_their_config():
    layer = SamplePatches(
        7,
        (5, 6),
        receptive_field=2,
        replace=True,
        use_logits=True,
        seed=4,
        name="sampler",
    )
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert isinstance(clone, SamplePatches)
    assert clone.get_config() == layer.get_config()
    expectation = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(Expectation(replace=True))
    )
    assert expectation.replace is True


# Batch sizes of [x_low, x_high, attention] that differ, and the message that
# names the two sizes compared.
BATCH_MISMATCHES = [
    ((2, 3, 2), r"`x_high` must have the batch size of `x_low` \(2\), got 3"),
    ((2, 1, 2), r"`x_high` must have the batch size of `x_low` \(2\), got 1"),
    ((2, 2, 3), r"`attention` must have the batch size of `x_low` \(2\), got 3"),
    ((3, 2, 2), r"`x_high` must have the batch size of `x_low` \(3\), got 2"),
]


def batch_of_inputs(batches, low=(8, 8), high=(32, 32)):
    """Eager ``[x_low, x_high, attention]`` with the given batch sizes."""
    b_low, b_high, b_att = batches
    attention = np.full((b_att, *low), 1 / np.prod(low), dtype="float32")
    return [
        np.zeros((b_low, *low, 1), "float32"),
        np.zeros((b_high, *high, 1), "float32"),
        attention,
    ]


def sampling_model(high=(32, 32)):
    """A model of one ``SamplePatches`` on inputs of unknown batch size."""
    inputs = [keras.Input((8, 8, 1)), keras.Input((*high, 1)), keras.Input((8, 8))]
    return keras.Model(inputs, SamplePatches(3, (4, 4), seed=0)(inputs))


@pytest.mark.parametrize("batches,match", BATCH_MISMATCHES)
def test_different_batch_sizes_are_refused_at_build_time(batches, match):
    shapes = [(8, 8, 1), (32, 32, 1), (8, 8)]
    inputs = [keras.Input(s, batch_size=b) for s, b in zip(shapes, batches)]
    with pytest.raises(ValueError, match=match):
        SamplePatches(3, (4, 4))(inputs)


@pytest.mark.parametrize("batches,match", BATCH_MISMATCHES)
def test_different_batch_sizes_are_refused_eagerly(batches, match):
    """Refused on the first call (which builds the layer) and on any later
    one, with a ValueError naming both sizes on every backend (PyTorch used
    to pad with zeros, JAX to fail in vmap)."""
    with pytest.raises(ValueError, match=match):
        SamplePatches(3, (4, 4))(batch_of_inputs(batches))
    layer = SamplePatches(3, (4, 4))
    patches, _ = layer(batch_of_inputs((2, 2, 2)))
    assert tuple(patches.shape) == (2, 3, 4, 4, 1)
    with pytest.raises(ValueError, match=match):
        layer(batch_of_inputs(batches))


@pytest.mark.parametrize("batches,match", BATCH_MISMATCHES)
def test_different_batch_sizes_are_refused_in_a_compiled_step(batches, match):
    """In the model's compiled function the shapes traced first are those
    of the data, so the check runs (Keras's ``predict`` refuses inputs of
    different lengths itself; ``predict_on_batch`` does not)."""
    with pytest.raises(ValueError, match=match):
        sampling_model().predict_on_batch(batch_of_inputs(batches))


def test_different_batch_sizes_in_a_graph_of_unknown_batch_size(backend):
    """The documented limit: once a TensorFlow function is traced for any
    batch size (here after two batch sizes), the sizes are unknown while
    tracing, and the mismatch fails when the graph runs, in TensorFlow's
    ops. JAX traces every shape and PyTorch runs eagerly: still refused."""
    model = sampling_model()
    for batch in (2, 5):
        model.predict_on_batch(batch_of_inputs((batch, batch, batch)))
    match = r"`x_high` must have the batch size of `x_low` \(2\), got 3"
    if backend == "tensorflow":
        import tensorflow as tf

        with pytest.raises(tf.errors.InvalidArgumentError):
            model.predict_on_batch(batch_of_inputs((2, 3, 2)))
    else:
        with pytest.raises(ValueError, match=match):
            model.predict_on_batch(batch_of_inputs((2, 3, 2)))


# x_high too small: [x_high's spatial shape, the message].
SMALL_HIGH = [
    (
        (3, 32),
        r"SamplePatches: `patch_size` must be at most the spatial shape of "
        r"`x_high` \(3, 32\) on every axis, got \(4, 4\)",
    ),
    (
        (32, 6),
        r"SamplePatches: `x_high` must be at least as large as `x_low` \(8, 8\) "
        r"on every spatial axis \(it is the high-resolution view\), got "
        r"spatial shape \(32, 6\)",
    ),
]


@pytest.mark.parametrize("high,match", SMALL_HIGH)
def test_small_x_high_is_refused_at_build_time(high, match):
    with pytest.raises(ValueError, match=match):
        sampling_model(high)
    inputs = [keras.Input((8, 8, 1)), keras.Input((None, None, 1)), keras.Input((8, 8))]
    SamplePatches(3, (4, 4))(inputs)  # unknown sizes: checked when known


@pytest.mark.parametrize("high,match", SMALL_HIGH)
def test_small_x_high_is_refused_eagerly(high, match):
    with pytest.raises(ValueError, match=match):
        SamplePatches(3, (4, 4))(batch_of_inputs((2, 2, 2), high=high))
    layer = SamplePatches(3, (4, 4))
    layer(batch_of_inputs((2, 2, 2)))
    with pytest.raises(ValueError, match=match):
        layer(batch_of_inputs((2, 2, 2), high=high))
    # As large as x_low and as the patch on an axis is fine.
    patches, _ = SamplePatches(3, (8, 4))(batch_of_inputs((2, 2, 2), high=(8, 32)))
    assert tuple(patches.shape) == (2, 3, 8, 4, 1)


@pytest.mark.parametrize("high,match", SMALL_HIGH)
def test_small_x_high_is_refused_in_a_compiled_step(high, match):
    with pytest.raises(ValueError, match=match):
        sampling_model((None, None)).predict_on_batch(
            batch_of_inputs((2, 2, 2), high=high)
        )


def test_small_x_high_is_refused_channels_first():
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        inputs = [keras.Input((1, 8, 8)), keras.Input((1, 32, 3)), keras.Input((8, 8))]
        with pytest.raises(ValueError, match=r"at most .* \(32, 3\) on every axis"):
            SamplePatches(3, (4, 4))(inputs)
    finally:
        keras.config.set_image_data_format(previous)
