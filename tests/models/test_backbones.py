"""Feature networks by name: shapes, preprocessing, freezing, weights files.

Everything runs on every backend, with random weights (no download). The
pretrained architectures are built once per module: on JAX building them
takes tens of seconds (seconds on PyTorch and TensorFlow).
"""

import keras
import numpy as np
import pytest

from ats.models import backbones
from ats.models.backbones import ImagePreprocessing, feature_network

PRETRAINED = ("resnet50", "efficientnetb0", "mobilenetv3small")
DIMENSIONS = {"resnet50": 2048, "efficientnetb0": 1280, "mobilenetv3small": 576}
MODULES = {
    "resnet50": keras.applications.resnet50,
    "efficientnetb0": keras.applications.efficientnet,
    "mobilenetv3small": keras.applications.mobilenet_v3,
}
PATCH = (32, 32)


def patches(n=2, channels=1, seed=0):
    return np.random.default_rng(seed).random((n, *PATCH, channels), "float32")


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_names_are_the_documented_ones():
    assert backbones.FEATURE_NETWORKS == (
        "small",
        "resnet50",
        "efficientnetb0",
        "mobilenetv3small",
    )
    assert set(backbones.MIN_PATCH_SIDES) == set(backbones.FEATURE_NETWORKS)


@pytest.mark.parametrize("name", [*backbones.FEATURE_NETWORKS, "hub:dinov2_small"])
def test_feature_network_names_accept_the_named_and_hub_presets(name):
    assert backbones.feature_network_name(name) == name


@pytest.mark.parametrize("name", ["vgg", "hub:", "", None, "Hub:x"])
def test_feature_network_names_refuse_others_naming_the_argument(name):
    with pytest.raises(ValueError, match="`feature` must be"):
        backbones.feature_network_name(name, "feature", "ats fit")


def test_ats_fit_takes_hub_names_and_refuses_unknown_ones_before_reading_data():
    from ats.experiments import your_data

    config = your_data.EXPERIMENT.config(feature="hub:dinov2_small")
    assert config.feature == "hub:dinov2_small"
    bad = your_data.EXPERIMENT.config(feature="vgg")
    with pytest.raises(ValueError, match="`feature` must be one of"):
        your_data.EXPERIMENT.check(bad, data=None)


@pytest.mark.parametrize("name", PRETRAINED)
@pytest.mark.parametrize("channels", [1, 3])
def test_preprocessing_is_the_architectures_own_on_0_255(name, channels):
    x = patches(channels=channels)
    rgb = np.repeat(x, 3, axis=-1) if channels == 1 else x
    # preprocess_input modifies numpy arrays in place: give it a copy.
    expected = numpy(MODULES[name].preprocess_input(255 * rgb.copy()))
    got = numpy(ImagePreprocessing(name)(x))
    assert got.shape == (2, *PATCH, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-4)
    if name == "resnet50":  # caffe: BGR, the ImageNet mean subtracted
        np.testing.assert_allclose(
            got[..., 0], 255 * rgb[..., 2] - 103.939, rtol=1e-6, atol=1e-4
        )
    else:  # identity: the model rescales [0, 255] inputs itself
        np.testing.assert_allclose(got, 255 * rgb, rtol=1e-6, atol=1e-4)


def test_efficientnet_file_weights_get_the_imagenet_rescaling():
    x = patches(channels=3)
    got = numpy(ImagePreprocessing("efficientnetb0", imagenet_stddev=True)(x))
    stddev = np.array([0.229, 0.224, 0.225], "float32")
    np.testing.assert_allclose(got, 255 * x / np.sqrt(stddev), rtol=1e-5)
    # Only EfficientNet has Keras' extra ImageNet rescaling.
    plain = numpy(ImagePreprocessing("mobilenetv3small", imagenet_stddev=True)(x))
    np.testing.assert_allclose(plain, 255 * x, rtol=1e-6)


def test_preprocessing_layer_serializes():
    layer = ImagePreprocessing("efficientnetb0", imagenet_stddev=True)
    again = ImagePreprocessing.from_config(layer.get_config())
    assert (again.architecture, again.imagenet_stddev) == ("efficientnetb0", True)
    with pytest.raises(ValueError, match="`architecture` must be one of"):
        ImagePreprocessing("small")


def test_small_is_the_megapixel_mnist_feature_network():
    net = feature_network("small", PATCH, channels=2, filters=6)
    assert net.name == "feature"
    assert net.input_shape == (None, *PATCH, 2)
    features = numpy(net(patches(channels=2)))
    assert features.shape == (2, 6)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1, rtol=1e-5)
    assert feature_network("small", PATCH, 1).output_shape == (None, 32)


def test_small_freezes():
    assert feature_network("small", PATCH, 1).trainable_weights
    frozen = feature_network("small", PATCH, 1, trainable=False)
    assert frozen.weights and not frozen.trainable_weights


def test_small_weights_file_round_trips(tmp_path):
    net = feature_network("small", PATCH, 1, filters=4)
    path = tmp_path / "small.weights.h5"
    net.save_weights(path)
    again = feature_network("small", PATCH, 1, weights=path, filters=4)
    x = patches()
    np.testing.assert_allclose(numpy(again(x)), numpy(net(x)), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"name": "vgg16"}, ValueError, "`name` must be one of"),
        ({"name": "small", "patch_size": (26, 40)}, ValueError, "at least 27x27"),
        ({"name": "resnet50", "patch_size": (31, 64)}, ValueError, "at least 32x32"),
        ({"name": "mobilenetv3small", "patch_size": (64, 16)}, ValueError, "32x32"),
        ({"name": "resnet50", "channels": 2}, ValueError, "1 .grayscale. or 3"),
        ({"name": "small", "weights": "imagenet"}, ValueError, "no pretrained"),
        ({"name": "resnet50", "weights": "nowhere.h5"}, ValueError, "existing"),
        ({"name": "resnet50", "weights": 3}, TypeError, "`weights` must be"),
        ({"name": "small", "trainable": 1}, TypeError, "`trainable` must be a bool"),
        ({"name": "efficientnetb0", "filters": 8}, ValueError, "`filters` must be"),
        ({"name": "small", "channels": 0}, ValueError, "`channels` must be"),
    ],
)
def test_errors_are_clear(kwargs, error, message):
    kwargs = {"patch_size": PATCH, "channels": 1, **kwargs}
    with pytest.raises(error, match=message) as raised:
        feature_network(**kwargs)
    assert str(raised.value).startswith("feature_network: `")


@pytest.fixture(scope="module")
def pretrained():
    """Each pretrained architecture, frozen, on grayscale 32x32 patches."""
    return {
        name: feature_network(name, PATCH, 1, weights=None, trainable=False)
        for name in PRETRAINED
    }


@pytest.mark.parametrize("name", PRETRAINED)
def test_pretrained_builds_frozen_with_its_feature_size(pretrained, name):
    net = pretrained[name]
    assert net.name == "feature"
    assert net.input_shape == (None, *PATCH, 1)
    assert net.output_shape == (None, DIMENSIONS[name])
    assert net.weights and not net.trainable_weights
    assert not net.get_layer(name).trainable_weights
    # On random patches in [0, 1] the features are finite and differ (with
    # random weights they may be tiny: MobileNetV3's are about 1e-11).
    features = numpy(net(patches()))
    assert features.shape == (2, DIMENSIONS[name])
    assert np.isfinite(features).all()
    assert not np.array_equal(features[0], features[1])


@pytest.mark.parametrize("name", PRETRAINED)
def test_pretrained_reads_patches_through_its_own_preprocessing(pretrained, name):
    net = pretrained[name]
    base = net.get_layer(name)
    x = patches()
    rgb = 255 * np.repeat(x, 3, axis=-1)
    expected = numpy(base(MODULES[name].preprocess_input(rgb.copy())))
    np.testing.assert_allclose(numpy(net(x)), expected, rtol=1e-4, atol=1e-5)
    # The architecture itself expects [0, 255]: EfficientNet and MobileNetV3
    # rescale inside the model, ResNet50 does not (caffe preprocessing).
    rescaling = [
        (float(np.ravel(layer.scale)[0]), float(np.ravel(layer.offset)[0]))
        for layer in base.layers
        if isinstance(layer, keras.layers.Rescaling)
    ]
    expected_rescaling = {
        "resnet50": [],
        "efficientnetb0": [(1 / 255, 0.0)],
        "mobilenetv3small": [(1 / 127.5, -1.0)],
    }[name]
    assert len(rescaling[:1]) == len(expected_rescaling)
    for got, wanted in zip(rescaling, expected_rescaling):
        np.testing.assert_allclose(got, wanted, rtol=1e-6)


def test_pretrained_trainable_by_default():
    # The cheapest architecture: trainable unless frozen.
    net = feature_network("mobilenetv3small", PATCH, 3, weights=None)
    assert net.trainable_weights
    assert net.input_shape == (None, *PATCH, 3)


def test_pretrained_weights_file_round_trips(pretrained, tmp_path):
    name = "mobilenetv3small"
    net = pretrained[name]
    path = tmp_path / "mobilenet.weights.h5"
    net.get_layer(name).save_weights(path)
    again = feature_network(name, PATCH, 1, weights=str(path), trainable=False)
    x = patches()
    np.testing.assert_allclose(numpy(again(x)), numpy(net(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_computes_in_16_bits_and_returns_float32(policy):
    net = feature_network("small", PATCH, 1, filters=4, dtype_policy=policy)
    conv = next(layer for layer in net.layers if "conv" in layer.name)
    assert conv.compute_dtype == policy.split("_")[1]
    assert conv.variable_dtype == "float32"  # weights stay float32
    features = net(patches())
    assert keras.backend.standardize_dtype(features.dtype) == "float32"
    assert np.isfinite(numpy(features)).all()
    # The global policy is left as it was.
    assert keras.config.dtype_policy().name == "float32"


def test_precision_scope_sets_the_default_policy():
    with backbones.precision_scope("mixed_bfloat16"):
        inside = feature_network("small", PATCH, 1, filters=4)
    outside = feature_network("small", PATCH, 1, filters=4)
    assert inside.layers[1].compute_dtype == "bfloat16"
    assert outside.layers[1].compute_dtype == "float32"
    with pytest.raises(ValueError, match="`dtype_policy` must be one of"):
        feature_network("small", PATCH, 1, dtype_policy="float16")


def test_hub_preprocessing_is_the_converters_affine_map():
    layer = backbones.HubPreprocessing([1 / 127.5] * 3, [-1.0, -1.0, -1.0])
    x = patches(channels=1)
    got = numpy(layer(x))
    np.testing.assert_allclose(got, np.repeat(2 * x - 1, 3, axis=-1), atol=1e-5)
    again = backbones.HubPreprocessing.from_config(layer.get_config())
    assert again.offset == [-1.0, -1.0, -1.0]


def test_hub_names_need_a_preset():
    with pytest.raises(ValueError, match="hub:<preset>"):
        feature_network("hub:", PATCH, 3)


@pytest.mark.parametrize("architecture", ["resnet", "dinov2"])
def test_hub_backbone_from_a_local_preset(tmp_path, architecture):
    """A keras_hub backbone by preset, offline: a tiny architecture built
    from its class with random weights, saved as a preset directory."""
    keras_hub = pytest.importorskip("keras_hub")
    if architecture == "resnet":
        base = keras_hub.models.ResNetBackbone(
            input_conv_filters=[64],
            input_conv_kernel_sizes=[3],
            stackwise_num_filters=[64, 32],
            stackwise_num_blocks=[1, 1],
            stackwise_num_strides=[1, 2],
            block_type="basic_block",
            use_pre_activation=False,
            image_shape=(None, None, 3),
        )
        dimension = 32
    else:
        base = keras_hub.models.DINOV2Backbone(
            patch_size=8,
            num_layers=1,
            hidden_dim=16,
            num_heads=2,
            intermediate_dim=32,
            image_shape=(*PATCH, 3),
            position_embedding_shape=PATCH,
        )
        dimension = 16
    base.save_to_preset(str(tmp_path / "preset"))
    name = f"hub:{tmp_path / 'preset'}"
    net = feature_network(name, PATCH, 1, trainable=False)
    assert net.name == "feature" and net.output_shape == (None, dimension)
    assert net.weights and not net.trainable_weights
    features = numpy(net(patches()))
    assert features.shape == (2, dimension) and np.isfinite(features).all()
    assert not np.array_equal(features[0], features[1])
    mixed = feature_network(name, PATCH, 3, dtype_policy="mixed_bfloat16")
    assert mixed.trainable_weights
    out = mixed(patches(channels=3))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
