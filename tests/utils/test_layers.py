"""Tests for ``ats.utils.layers`` (run once per Keras backend)."""

import functools

import keras
import numpy as np
import pytest
from autodiff import gradients
from keras import ops

import ats.utils
from ats.utils.layers import (
    ActivityRegularizer,
    ImageLinearTransform,
    ImagePan,
    L2Normalize,
    ResizeImages,
    SampleSoftmax,
    TotalReshape,
)
from ats.utils.regularizers import MultinomialEntropy, multinomial_entropy


def _np(x):
    return ops.convert_to_numpy(x)


def _value_and_grad(fn, x):
    """``fn(x)`` and its gradient with respect to the numpy array ``x``."""
    value, (grad,) = gradients(fn, x.astype("float32"))
    return float(value), grad


def _np_sample_softmax(x):
    flat = x.reshape(len(x), -1).astype(np.float64)
    e = np.exp(flat - flat.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(x.shape)


@pytest.fixture
def mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def test_utils_package_exposes_submodules():
    assert ats.utils.layers.SampleSoftmax is SampleSoftmax
    assert ats.utils.regularizers.MultinomialEntropy is MultinomialEntropy


# --------------------------------------------------------------------------
# SampleSoftmax
# --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 10), (2, 4, 5), (2, 3, 4, 2)])
def test_sample_softmax_matches_numpy(rng, shape):
    x = rng.normal(scale=3.0, size=shape).astype("float32")
    y = _np(SampleSoftmax()(x))
    assert y.shape == shape and y.dtype == np.float32
    np.testing.assert_allclose(y, _np_sample_softmax(x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        y.reshape(shape[0], -1).sum(axis=1), np.ones(shape[0]), rtol=1e-5
    )


def test_sample_softmax_is_numerically_stable(rng):
    x = (rng.normal(size=(2, 6, 6)) * 10 + 1000).astype("float32")
    y = _np(SampleSoftmax()(x))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, _np_sample_softmax(x), rtol=1e-4, atol=1e-7)


def test_sample_softmax_smoothing(rng):
    x = rng.normal(scale=3.0, size=(2, 4, 5)).astype("float32")
    smooth = 0.3
    y = _np(SampleSoftmax(smooth=smooth)(x))
    expected = (1 - smooth) * _np_sample_softmax(x) + smooth / 20
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(y.sum(axis=(1, 2)), [1, 1], rtol=1e-5)
    assert y.min() >= smooth / 20 - 1e-7


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_sample_softmax_squeeze_channels(rng, data_format):
    shape = (2, 4, 5, 1) if data_format == "channels_last" else (2, 1, 4, 5)
    x = rng.normal(size=shape).astype("float32")
    layer = SampleSoftmax(squeeze_channels=True, data_format=data_format)
    y = _np(layer(x))
    assert y.shape == (2, 4, 5)
    np.testing.assert_allclose(
        y, _np_sample_softmax(x).reshape(2, 4, 5), rtol=1e-5, atol=1e-7
    )
    assert layer.compute_output_shape((None,) + shape[1:]) == (None, 4, 5)


def test_sample_softmax_squeeze_uses_image_data_format():
    assert SampleSoftmax().data_format == keras.config.image_data_format()


def test_sample_softmax_squeeze_rejects_multiple_channels():
    with pytest.raises(ValueError, match="channel"):
        SampleSoftmax(squeeze_channels=True, data_format="channels_last")(
            np.zeros((2, 4, 5, 3), "float32")
        )
    with pytest.raises(ValueError, match="channel"):
        SampleSoftmax(squeeze_channels=True, data_format="channels_first")(
            keras.Input((3, 4, 5))
        )


def test_sample_softmax_functional_shapes():
    inputs = keras.Input((6, 7, 1))
    outputs = SampleSoftmax(squeeze_channels=True)(inputs)
    assert tuple(outputs.shape) == (None, 6, 7)
    assert SampleSoftmax().compute_output_shape((None, 6, 7, 1)) == (
        None,
        6,
        7,
        1,
    )


def test_sample_softmax_float32_under_mixed_precision(rng, mixed_precision):
    # 4096 positions with spread logits: many probabilities are far below the
    # float16 range and would underflow to zero.
    logits = rng.normal(scale=6.0, size=(2, 64, 64)).astype("float16")
    layer = SampleSoftmax()
    assert layer.compute_dtype == "float32"
    symbolic = layer(keras.Input((64, 64), dtype="float16"))
    assert keras.backend.standardize_dtype(symbolic.dtype) == "float32"
    y = layer(ops.convert_to_tensor(logits))
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    y = _np(y)
    expected = _np_sample_softmax(logits.astype("float32"))
    assert expected.min() < 6e-8  # would underflow in float16
    assert np.all(y > 0)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-12)
    # Pass-through layers keep the float32 distribution under mixed policy.
    kept = ActivityRegularizer(multinomial_entropy(0.1))(
        y16 := layer(ops.convert_to_tensor(logits))
    )
    assert keras.backend.standardize_dtype(kept.dtype) == "float32"
    kept = TotalReshape((-1, 4096))(y16)
    assert keras.backend.standardize_dtype(kept.dtype) == "float32"
    inputs = keras.Input((64, 64), dtype="float16")
    outputs = ActivityRegularizer(multinomial_entropy(0.1))(SampleSoftmax()(inputs))
    outputs = TotalReshape((-1, 4096))(outputs)
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
    model = keras.Model(inputs, outputs)
    out = model(ops.convert_to_tensor(logits))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert np.all(_np(out) > 0)
    # Even an explicit float16 policy computes and returns float32.
    y16 = SampleSoftmax(dtype="mixed_float16")(ops.convert_to_tensor(logits))
    assert keras.backend.standardize_dtype(y16.dtype) == "float32"
    assert np.all(_np(y16) > 0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"smooth": 1}, ValueError, "smooth"),
        ({"smooth": -0.1}, ValueError, "smooth"),
        ({"smooth": "a"}, TypeError, "smooth"),
        ({"squeeze_channels": 1}, TypeError, "squeeze_channels"),
        ({"data_format": "NHWC"}, ValueError, "data_format"),
    ],
)
def test_sample_softmax_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        SampleSoftmax(**kwargs)


# --------------------------------------------------------------------------
# L2Normalize
# --------------------------------------------------------------------------


def test_l2_normalize_unit_norm_and_zero_vector(rng):
    x = rng.normal(size=(4, 7)).astype("float32")
    x[1] = 0
    y = _np(L2Normalize()(x))
    norms = np.linalg.norm(y, axis=-1)
    np.testing.assert_allclose(norms[[0, 2, 3]], 1, rtol=1e-5)
    nonzero = x[[0, 2, 3]]
    np.testing.assert_allclose(
        y[[0, 2, 3]],
        nonzero / np.linalg.norm(nonzero, axis=-1, keepdims=True),
        rtol=1e-5,
    )
    assert np.all(y[1] == 0)


def test_l2_normalize_axis_tuple(rng):
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    y = _np(L2Normalize(axis=(1, 2))(x))
    np.testing.assert_allclose(np.sqrt((y**2).sum(axis=(1, 2))), 1, rtol=1e-5)
    y = _np(L2Normalize(axis=1)(x))
    np.testing.assert_allclose(np.sqrt((y**2).sum(axis=1)), 1, rtol=1e-5)


def test_l2_normalize_finite_gradient_at_zero():
    layer = L2Normalize()
    _, grad = _value_and_grad(lambda t: ops.sum(layer(t)), np.zeros((2, 5), "float32"))
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"axis": "last"}, TypeError, "axis"),
        ({"axis": 1.5}, TypeError, "axis"),
        ({"axis": ()}, ValueError, "axis"),
        ({"epsilon": 0}, ValueError, "epsilon"),
    ],
)
def test_l2_normalize_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        L2Normalize(**kwargs)


def test_l2_normalize_axis_out_of_range():
    with pytest.raises(ValueError, match="axis"):
        L2Normalize(axis=3)(np.ones((2, 3), "float32"))


# --------------------------------------------------------------------------
# ResizeImages
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_resize_images_shapes(rng, mode):
    x = rng.random(size=(2, 16, 12, 3)).astype("float32")
    layer = ResizeImages((8, 6), mode=mode, data_format="channels_last")
    y = _np(layer(x))
    assert y.shape == (2, 8, 6, 3)
    assert layer.compute_output_shape((None, 16, 12, 3)) == (None, 8, 6, 3)
    # A constant image stays constant.
    c = _np(layer(np.full((1, 16, 12, 3), 0.5, "float32")))
    np.testing.assert_allclose(c, 0.5, atol=1e-5)

    xf = np.transpose(x, (0, 3, 1, 2))
    layer_cf = ResizeImages((8, 6), mode=mode, data_format="channels_first")
    yf = _np(layer_cf(xf))
    assert yf.shape == (2, 3, 8, 6)
    assert layer_cf.compute_output_shape((None, 3, 16, 12)) == (None, 3, 8, 6)
    np.testing.assert_allclose(yf, np.transpose(y, (0, 3, 1, 2)), atol=1e-5)


def test_resize_images_in_functional_model():
    inputs = keras.Input((None, None, 1))
    outputs = ResizeImages((5, 7))(inputs)
    assert tuple(outputs.shape) == (None, 5, 7, 1)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"size": (8, 8), "mode": "lanczos"}, ValueError, "mode"),
        ({"size": 8}, TypeError, "size"),
        ({"size": (8, 0)}, ValueError, "size"),
        ({"size": (8, 8, 8)}, ValueError, "size"),
        ({"size": (8.0, 8)}, TypeError, "size"),
    ],
)
def test_resize_images_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ResizeImages(**kwargs)


# --------------------------------------------------------------------------
# TotalReshape
# --------------------------------------------------------------------------


def test_total_reshape_round_trip(rng):
    x = rng.normal(size=(2, 5, 4, 4, 3)).astype("float32")
    flat = TotalReshape((-1, 4, 4, 3))(x)
    assert tuple(flat.shape) == (10, 4, 4, 3)
    np.testing.assert_array_equal(_np(flat), x.reshape(10, 4, 4, 3))
    back = _np(TotalReshape((-1, 5, 4, 4, 3))(flat))
    np.testing.assert_array_equal(back, x)


def test_total_reshape_output_shape():
    layer = TotalReshape((-1, 28, 28, 1))
    assert layer.compute_output_shape((None, 784)) == (None, 28, 28, 1)
    assert TotalReshape((4, -1)).compute_output_shape((2, 2, 8)) == (4, None)

    # (B, N, *patch, C) -> (B*N, *patch, C) -> features -> (B, N, D)
    inputs = keras.Input((5, 4, 4, 3))
    patches = TotalReshape((-1, 4, 4, 3))(inputs)
    assert tuple(patches.shape) == (None, 4, 4, 3)
    features = keras.layers.Dense(6)(keras.layers.Flatten()(patches))
    per_sample = TotalReshape((-1, 5, 6))(features)
    assert tuple(per_sample.shape) == (None, 5, 6)
    model = keras.Model(inputs, per_sample)
    out = model(np.zeros((3, 5, 4, 4, 3), "float32"))
    assert tuple(out.shape) == (3, 5, 6)


def test_total_reshape_keeps_integer_dtype():
    y = TotalReshape((-1,))(np.arange(6, dtype="int32").reshape(2, 3))
    assert keras.backend.standardize_dtype(y.dtype) == "int32"
    spec = TotalReshape((-1,))(keras.Input((3,), dtype="int32"))
    assert keras.backend.standardize_dtype(spec.dtype) == "int32"


@pytest.mark.parametrize(
    "shape, error",
    [
        ((-1, -1, 3), ValueError),
        ((0, 3), ValueError),
        ((-2, 3), ValueError),
        ((), ValueError),
        ((2.0, 3), TypeError),
        (5, TypeError),
        ("abc", TypeError),
    ],
)
def test_total_reshape_bad_arguments(shape, error):
    with pytest.raises(error, match="shape"):
        TotalReshape(shape)


# --------------------------------------------------------------------------
# ActivityRegularizer
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="ats_tests")
def _sum_of_squares(x):
    return 0.5 * ops.sum(ops.square(x))


def _unregistered_sum(x):
    return ops.sum(x)


def _np_entropy_loss(p, strength, eps=1e-6):
    p = p.astype(np.float64)
    return strength * np.sum(p * np.log(p + eps)) / len(p)


def test_activity_regularizer_adds_loss(rng):
    x = rng.normal(size=(3, 4, 5)).astype("float32")
    inputs = keras.Input((4, 5))
    att = SampleSoftmax()(inputs)
    att = ActivityRegularizer(multinomial_entropy(0.1))(att)
    model = keras.Model(inputs, att)
    y = _np(model(x))
    np.testing.assert_allclose(y, _np_sample_softmax(x), rtol=1e-5, atol=1e-7)
    assert len(model.losses) == 1
    np.testing.assert_allclose(
        _np(model.losses[0]), _np_entropy_loss(y, 0.1), rtol=1e-5
    )


def test_activity_regularizer_loss_in_train_and_test_steps(rng):
    x = rng.normal(size=(4, 6)).astype("float32")
    inputs = keras.Input((6,))
    outputs = ActivityRegularizer(_sum_of_squares)(inputs)
    outputs = keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer="zeros"
    )(outputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    target = np.zeros((4, 1), "float32")
    expected = 0.5 * np.sum(x.astype(np.float64) ** 2)  # mse is exactly 0
    loss = model.evaluate(x, target, batch_size=4, verbose=0)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    history = model.fit(x, target, batch_size=4, epochs=1, verbose=0)
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-5)


def test_activity_regularizer_accepts_identifiers(rng):
    x = rng.normal(size=(2, 3)).astype("float32")
    layer = ActivityRegularizer("l2")
    assert isinstance(layer.regularizer, keras.regularizers.L2)
    layer(x)
    np.testing.assert_allclose(
        _np(layer.losses[0]),
        0.01 * np.sum(x.astype(np.float64) ** 2),
        rtol=1e-5,
    )
    layer = ActivityRegularizer(
        keras.regularizers.serialize(keras.regularizers.L1(0.5))
    )
    assert isinstance(layer.regularizer, keras.regularizers.L1)


def test_activity_regularizer_bad_arguments():
    with pytest.raises(TypeError, match="regularizer"):
        ActivityRegularizer(3)
    with pytest.raises(TypeError, match="regularizer"):
        ActivityRegularizer(None)
    with pytest.raises(ValueError, match="regularizer"):
        ActivityRegularizer("no_such_regularizer")


def test_activity_regularizer_unserializable_callable():
    layer = ActivityRegularizer(functools.partial(ops.sum, axis=None))
    layer(np.ones((2, 2), "float32"))  # usable...
    with pytest.raises(TypeError, match="regularizer"):
        layer.get_config()  # ...but not serializable


def test_activity_regularizer_plain_function_serialization():
    layer = ActivityRegularizer(_sum_of_squares)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert restored.regularizer is _sum_of_squares

    # Unregistered functions are saved by name and need custom_objects.
    config = keras.saving.serialize_keras_object(ActivityRegularizer(_unregistered_sum))
    restored = keras.saving.deserialize_keras_object(
        config, custom_objects={"_unregistered_sum": _unregistered_sum}
    )
    assert restored.regularizer is _unregistered_sum


# --------------------------------------------------------------------------
# ImageLinearTransform
# --------------------------------------------------------------------------


def test_image_linear_transform_identity_at_inference(rng):
    x = rng.random(size=(3, 6, 6, 2)).astype("float32")
    layer = ImageLinearTransform(p=1.0, seed=1)
    np.testing.assert_array_equal(_np(layer(x)), x)
    np.testing.assert_array_equal(_np(layer(x, training=False)), x)
    np.testing.assert_array_equal(
        _np(ImageLinearTransform(p=0.0, seed=1)(x, training=True)), x
    )


def test_image_linear_transform_p1_is_affine_per_image(rng):
    x = rng.random(size=(8, 5, 5, 3)).astype("float32")
    a_range, b_range = (0.5, 1.5), (-0.2, 0.3)
    layer = ImageLinearTransform(a=a_range, b=b_range, p=1.0, seed=3)
    y = _np(layer(x, training=True))
    assert y.shape == x.shape
    coefs = []
    for xi, yi in zip(x, y):
        a, b = np.polyfit(xi.ravel(), yi.ravel(), 1)
        np.testing.assert_allclose(a * xi + b, yi, atol=1e-5)
        assert a_range[0] - 1e-5 <= a <= a_range[1] + 1e-5
        assert b_range[0] - 1e-5 <= b <= b_range[1] + 1e-5
        coefs.append(a)
    assert len(np.unique(np.round(coefs, 5))) > 1  # drawn per image
    # Fresh draws at every call.
    assert not np.allclose(_np(layer(x, training=True)), y)


def test_image_linear_transform_partial_probability(rng):
    x = rng.random(size=(64, 3, 3, 1)).astype("float32")
    layer = ImageLinearTransform(a=(2.0, 3.0), b=(0.0, 0.0), p=0.5, seed=0)
    y = _np(layer(x, training=True))
    unchanged = np.all(np.isclose(y, x), axis=(1, 2, 3))
    assert 0 < unchanged.sum() < len(x)


def test_image_linear_transform_seed_reproducible(rng):
    x = rng.random(size=(4, 5, 5, 1)).astype("float32")
    y1 = _np(ImageLinearTransform(seed=42)(x, training=True))
    y2 = _np(ImageLinearTransform(seed=42)(x, training=True))
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"a": (1.2, 0.8)}, ValueError, "`a`"),
        ({"a": 1.0}, TypeError, "`a`"),
        ({"a": (1.0, 2.0, 3.0)}, ValueError, "`a`"),
        ({"b": ("x", 1)}, TypeError, "b"),
        ({"p": 1.5}, ValueError, "`p`"),
        ({"p": -0.1}, ValueError, "`p`"),
        ({"seed": "abc"}, TypeError, "seed"),
    ],
)
def test_image_linear_transform_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ImageLinearTransform(**kwargs)


# --------------------------------------------------------------------------
# ImagePan
# --------------------------------------------------------------------------


def _bright_pixel_images(n, h, w, row, col):
    x = np.zeros((n, h, w, 1), "float32")
    x[:, row, col, 0] = 1.0
    return x


def test_image_pan_identity_at_inference(rng):
    x = rng.random(size=(2, 8, 8, 3)).astype("float32")
    layer = ImagePan(pixels=3, p=1.0, seed=1)
    np.testing.assert_array_equal(_np(layer(x)), x)
    np.testing.assert_array_equal(_np(layer(x, training=False)), x)
    np.testing.assert_array_equal(
        _np(ImagePan(pixels=3, p=0.0, seed=1)(x, training=True)), x
    )


def test_image_pan_horizontal_shift():
    pixels, row, col = 3, 4, 8
    x = _bright_pixel_images(4, 9, 17, row, col)
    layer = ImagePan(pixels=pixels, p=1.0, horizontally=True, vertically=False, seed=5)
    y = _np(layer(x, training=True))
    shifts = []
    for yi in y:
        positions = np.argwhere(yi[..., 0] > 0)
        assert len(positions) == 1  # integer shift: one exact copy
        ((r, c),) = positions
        assert r == row
        assert yi[r, c, 0] == pytest.approx(1.0)
        assert abs(c - col) <= pixels
        shifts.append(c - col)
    assert any(s != 0 for s in shifts)


def test_image_pan_vertical_shift_channels_first():
    pixels, row, col = 2, 5, 3
    x = np.transpose(_bright_pixel_images(6, 11, 7, row, col), (0, 3, 1, 2))
    layer = ImagePan(
        pixels=pixels,
        p=1.0,
        horizontally=False,
        vertically=True,
        seed=7,
        data_format="channels_first",
    )
    y = _np(layer(x, training=True))
    assert y.shape == x.shape
    rows = []
    for yi in y:
        ((r, c),) = np.argwhere(yi[0] > 0)
        assert c == col and abs(r - row) <= pixels
        rows.append(r)
    assert any(r != row for r in rows)


def test_image_pan_fills_with_zeros():
    x = np.ones((4, 9, 17, 1), "float32")
    y = _np(ImagePan(pixels=4, p=1.0, seed=2)(x, training=True))
    for yi in y:
        zero_cols = np.where(np.all(yi[..., 0] == 0, axis=0))[0]
        one_cols = np.where(np.all(yi[..., 0] == 1, axis=0))[0]
        assert len(zero_cols) + len(one_cols) == 17
        assert len(zero_cols) <= 4


def test_image_pan_bilinear_preserves_mass():
    x = _bright_pixel_images(4, 9, 17, 2, 8)
    y = _np(ImagePan(pixels=4, p=1.0, mode="bilinear", seed=3)(x, training=True))
    np.testing.assert_allclose(y.sum(axis=(1, 2, 3)), 1.0, atol=1e-5)
    for yi in y:
        assert np.all(np.argwhere(yi[..., 0] > 1e-6)[:, 0] == 2)


def test_image_pan_seed_reproducible(rng):
    x = rng.random(size=(4, 9, 17, 1)).astype("float32")
    y1 = _np(ImagePan(pixels=5, p=1.0, seed=11)(x, training=True))
    y2 = _np(ImagePan(pixels=5, p=1.0, seed=11)(x, training=True))
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"mode": "bicubic"}, ValueError, "mode"),
        ({"pixels": -1}, ValueError, "pixels"),
        ({"pixels": "10"}, TypeError, "pixels"),
        ({"p": 2}, ValueError, "`p`"),
        ({"horizontally": "yes"}, TypeError, "horizontally"),
        ({"vertically": 0}, TypeError, "vertically"),
        ({"seed": 1.5}, TypeError, "seed"),
    ],
)
def test_image_pan_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ImagePan(**kwargs)


def test_image_pan_requires_4d_inputs():
    with pytest.raises(ValueError, match="4D"):
        ImagePan()(np.zeros((2, 8, 8), "float32"))


# --------------------------------------------------------------------------
# Serialization
# --------------------------------------------------------------------------


LAYERS = [
    lambda: SampleSoftmax(squeeze_channels=True, smooth=0.1, name="ss"),
    lambda: L2Normalize(axis=(1, 2), epsilon=1e-8),
    lambda: ResizeImages((8, 6), mode="bicubic"),
    lambda: TotalReshape((-1, 4, 4, 3)),
    lambda: ActivityRegularizer(multinomial_entropy(0.05, eps=1e-4)),
    lambda: ActivityRegularizer(keras.regularizers.L2(0.1)),
    lambda: ImageLinearTransform(a=(0.5, 1.5), b=(-0.2, 0.2), p=0.3, seed=4),
    lambda: ImagePan(pixels=7, p=0.4, vertically=True, mode="bilinear", seed=9),
]


@pytest.mark.parametrize("make_layer", LAYERS)
def test_layer_serialization_round_trip(make_layer):
    layer = make_layer()
    serialized = keras.saving.serialize_keras_object(layer)
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()
    assert type(restored).from_config(layer.get_config()).get_config() == (
        layer.get_config()
    )


def test_augmentations_in_compiled_training(rng):
    """The SeedGenerator-driven layers work inside a compiled train step."""
    pan = ImagePan(pixels=2, p=1.0, seed=1)
    linear = ImageLinearTransform(p=1.0, seed=2)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            pan,
            linear,
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    state = _np(pan.seed_generator.state).copy()
    history = model.fit(
        rng.random(size=(4, 8, 8, 1)).astype("float32"),
        np.zeros((4, 1), "float32"),
        batch_size=4,
        epochs=1,
        verbose=0,
    )
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(_np(pan.seed_generator.state), state)


def test_model_save_and_load(tmp_path, rng):
    inputs = keras.Input((16, 16, 1))
    x = ImagePan(pixels=2, p=0.5, seed=1)(inputs)
    x = ImageLinearTransform(seed=2)(x)
    low = ResizeImages((8, 8))(x)
    att = SampleSoftmax(squeeze_channels=True, smooth=0.05)(
        keras.layers.Conv2D(1, 3, padding="same")(low)
    )
    att = ActivityRegularizer(multinomial_entropy(0.01))(att)
    patches = TotalReshape((-1, 4, 4, 1))(low)
    feats = L2Normalize()(keras.layers.Dense(5)(keras.layers.Flatten()(patches)))
    feats = TotalReshape((-1, 4, 5))(feats)
    pooled = keras.layers.GlobalAveragePooling1D()(feats)
    outputs = keras.layers.Concatenate()([pooled, keras.layers.Flatten()(att)])
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")

    data = rng.random(size=(4, 16, 16, 1)).astype("float32")
    expected = _np(model(data))

    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(_np(loaded(data)), expected, rtol=1e-5, atol=1e-6)
    by_type = {type(layer): layer for layer in loaded.layers}
    assert isinstance(by_type[ActivityRegularizer].regularizer, MultinomialEntropy)
    assert by_type[ImagePan].get_config()["seed"] == 1
    model(data)
    loaded(data)
    assert len(loaded.losses) == len(model.losses) == 1
    np.testing.assert_allclose(_np(loaded.losses[0]), _np(model.losses[0]), rtol=1e-5)
