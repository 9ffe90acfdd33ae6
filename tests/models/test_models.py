"""The Megapixel MNIST model builders and ``inspect``."""

import keras
import numpy as np
import pytest

from ats.core import SamplePatches
from ats.models import megapixel_mnist as models
from ats.training import deterministic_sampling
from ats.utils.layers import ActivityRegularizer

LOW, HIGH, PATCH = (16, 16, 1), (96, 96, 1), (30, 30)


def small_ats(**kwargs):
    kwargs = {
        "n_patches": 3,
        "patch_size": PATCH,
        "filters": 4,
        "attention_filters": 2,
        "seed": 1,
        **kwargs,
    }
    return models.ats_model(LOW, HIGH, **kwargs)


def images(n=2, seed=0):
    rng = np.random.default_rng(seed)
    x_high = rng.random((n, *HIGH)).astype("float32")
    x_low = x_high.reshape(n, 16, 6, 16, 6, 1).mean(axis=(2, 4))
    return x_low, x_high


def test_attention_network_is_a_distribution_over_the_low_view():
    net = models.attention_network(filters=3)
    attention = keras.ops.convert_to_numpy(net(images()[0]))
    assert attention.shape == (2, 16, 16)
    np.testing.assert_allclose(attention.sum(axis=(1, 2)), 1, rtol=1e-5)
    convolutions = [
        layer for layer in net.layers if isinstance(layer, keras.layers.Conv2D)
    ]
    assert [c.kernel_size for c in convolutions] == [(3, 3)] * 3
    assert [c.filters for c in convolutions] == [3, 3, 1]
    assert [c.activation.__name__ for c in convolutions[:2]] == ["tanh"] * 2


def test_the_content_prior_adds_the_local_contrast_to_the_same_logits():
    """With a prior the network has the same convolutions (no weight more)
    and its distribution is softmax(logits + strength * contrast)."""
    from ats.utils.layers import LocalContrast

    keras.utils.set_random_seed(3)
    x_low = images()[0]
    with_prior = models.attention_network(3, smooth=0, prior_strength=2.5, channels=1)
    plain = models.attention_network(3, smooth=0)
    plain.build(x_low.shape)
    assert with_prior.count_params() == plain.count_params()
    plain.set_weights(with_prior.get_weights())
    logits = np.log(keras.ops.convert_to_numpy(plain(x_low)))
    contrast = keras.ops.convert_to_numpy(LocalContrast(strength=2.5)(x_low))[..., 0]
    expected = np.exp(logits + contrast)
    expected /= expected.sum(axis=(1, 2), keepdims=True)
    attention = keras.ops.convert_to_numpy(with_prior(x_low))
    np.testing.assert_allclose(attention, expected, rtol=1e-4, atol=1e-7)


def test_ats_model_passes_its_attention_prior_on():
    model = small_ats(attention_prior=3.0)
    prior = model.get_layer("attention").get_layer("content_prior")
    assert prior.strength == 3.0
    with pytest.raises(ValueError, match="prior_strength"):
        small_ats(attention_prior=-1.0)


def test_feature_network_gives_unit_features():
    net = models.feature_network((30, 30), filters=5, channels=2)
    assert net.input_shape == (None, 30, 30, 2)
    features = keras.ops.convert_to_numpy(
        net(np.random.default_rng(0).random((4, 30, 30, 2)))
    )
    assert features.shape == (4, 5)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1, rtol=1e-5)
    kernels = [
        layer.kernel_size
        for layer in net.layers
        if isinstance(layer, keras.layers.Conv2D)
    ]
    assert kernels == [(7, 7), (3, 3), (3, 3), (3, 3)]


def test_full_image_cnn_is_the_feature_network_over_the_whole_image():
    def convolutions(net):
        return [
            (layer.kernel_size, layer.strides, layer.padding, layer.filters)
            for layer in net.layers
            if isinstance(layer, keras.layers.Conv2D)
        ]

    full = models.full_image_cnn(HIGH, n_classes=7, filters=6)
    assert full.input_shape == (None, *HIGH)
    assert full.output_shape == (None, 7)
    assert convolutions(full) == convolutions(models.feature_network(PATCH, filters=6))


def test_low_res_cnn_reads_the_low_view():
    net = models.low_res_cnn(LOW, n_classes=3, filters=4)
    probabilities = keras.ops.convert_to_numpy(net(images()[0]))
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_ats_model_outputs_probabilities():
    model = small_ats(n_classes=4)
    assert [tuple(x.shape) for x in model.inputs] == [(None, *LOW), (None, *HIGH)]
    probabilities = model.predict(list(images(3)), verbose=0)
    assert probabilities.shape == (3, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_ats_model_regularizes_the_attention():
    def regularizers(model):
        return [
            layer for layer in model.layers if isinstance(layer, ActivityRegularizer)
        ]

    assert len(regularizers(small_ats())) == 1
    assert not regularizers(small_ats(regularizer_strength=0))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: models.ats_model((16, 16), HIGH), ValueError, "`low_shape`"),
        (
            lambda: models.ats_model(LOW, (96, 96, 3)),
            ValueError,
            "`high_shape` must be an image shape with the channels of `low_shape`",
        ),
        (lambda: models.ats_model(LOW, HIGH, n_classes=0), ValueError, "`n_classes`"),
        (
            lambda: models.ats_model(LOW, HIGH, regularizer_strength=-1),
            ValueError,
            "`regularizer_strength`",
        ),
        (
            lambda: models.feature_network((20, 50)),
            ValueError,
            "feature_network: `patch_size` must be a tuple of 2 ints >= 27",
        ),
        (lambda: models.attention_network(filters=0), ValueError, "`filters`"),
        (lambda: models.full_image_cnn(HIGH, filters=1.5), TypeError, "`filters`"),
        (lambda: models.low_res_cnn([16, 16, "1"]), TypeError, "`low_shape`"),
        (lambda: models.low_res_cnn(LOW, n_classes=True), TypeError, "`n_classes`"),
    ],
)
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_numpy_ints_are_accepted():
    model = models.low_res_cnn(
        (np.int64(16), 16, 1), n_classes=np.int32(3), filters=np.int64(2)
    )
    assert model.output_shape == (None, 3)


def test_inspect_returns_the_patches_at_their_corners():
    model = small_ats()
    x_low, x_high = images()
    seen = models.inspect(model, x_low, x_high, seed=3)
    assert seen["attention"].shape == (2, 16, 16)
    assert seen["corners"].shape == (2, 3, 2)
    assert seen["patches"].shape == (2, 3, *PATCH, 1)
    assert seen["probabilities"].shape == (2, 10)
    padded = np.pad(x_high, ((0, 0), (30, 30), (30, 30), (0, 0)))
    for b in range(2):
        for (row, col), patch in zip(seen["corners"][b], seen["patches"][b]):
            np.testing.assert_array_equal(
                padded[b, row + 30 : row + 60, col + 30 : col + 60], patch
            )
    again = models.inspect(model, x_low, x_high, seed=3)
    np.testing.assert_array_equal(seen["corners"], again["corners"])


def test_deterministic_inspect_is_the_models_top_k_prediction():
    model = small_ats()
    x_low, x_high = images()
    seen = models.inspect(model, x_low, x_high, deterministic=True)
    order = np.argsort(-seen["attention"].reshape(2, -1), axis=1)[:, :3]
    np.testing.assert_allclose(
        seen["sampled_attention"],
        np.take_along_axis(seen["attention"].reshape(2, -1), order, axis=1),
        rtol=1e-6,
    )
    with deterministic_sampling(model):
        predicted = model.predict([x_low, x_high], verbose=0)
    np.testing.assert_allclose(seen["probabilities"], predicted, rtol=1e-4, atol=1e-6)


def test_inspect_needs_an_ats_model():
    with pytest.raises(ValueError, match="SamplePatches"):
        models.inspect(models.low_res_cnn(LOW, filters=2), *images())


def test_models_lists_the_views_each_model_reads():
    assert models.MODELS == {
        "ats": ("low", "high"),
        "full-cnn": ("high",),
        "low-cnn": ("low",),
    }
    assert sum(isinstance(layer, SamplePatches) for layer in small_ats().layers) == 1
