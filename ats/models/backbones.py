"""Feature networks by name: the small CNN and Keras' pretrained architectures.

:func:`feature_network` builds the network that attention sampling runs on
each sampled patch, from its name in :data:`FEATURE_NETWORKS`:

* ``"small"``: the Megapixel MNIST feature network
  (:func:`ats.models.megapixel_mnist.feature_network`: four ``valid`` ReLU
  convolutions, global max pooling, ``L2Normalize``), random weights.
* ``"resnet50"``, ``"efficientnetb0"``, ``"mobilenetv3small"``: the
  ``keras.applications`` architecture without its top, global average
  pooled, with ImageNet weights (``weights="imagenet"``, downloaded by Keras
  once and cached in ``~/.keras/models``), random weights (None) or the
  weights of a file.

* ``"hub:<preset>"``: a ``keras_hub`` backbone by preset name (e.g.
  ``"hub:resnet_50_imagenet"``, ``"hub:dinov2_small"``, a Hugging Face
  checkpoint that keras_hub converts such as ``"hub:hf://owkin/phikon-v2"``,
  or the directory of a preset saved by ``backbone.save_to_preset``), with
  its weights (``weights="imagenet"``: keras_hub downloads them, online) or
  random ones (None: still needs the preset's configuration, from the
  download cache or a local directory). Needs ``pip install keras-hub``.
  A feature map is global average pooled, a sequence of tokens gives its
  first (class) token.

Any of them runs in mixed precision with ``dtype_policy="mixed_bfloat16"``
or ``"mixed_float16"`` (or inside :func:`precision_scope`): the network
computes in 16 bits and its features are cast back to float32, so the
attention sampling estimator and the classifier stay in float32.

Patches are float32 in [0, 1]; each pretrained architecture gets its inputs
as its ImageNet weights expect them (:class:`ImagePreprocessing`): scaled
to [0, 255], grayscale repeated to three channels, then the architecture's
own ``preprocess_input`` (ResNet50: RGB to BGR and the ImageNet mean
subtracted, "caffe" style; EfficientNetB0 and MobileNetV3 rescale inside the
model, their ``preprocess_input`` is the identity).

Example:
    >>> import numpy as np
    >>> from ats.models.backbones import feature_network
    >>> net = feature_network("small", (32, 32), channels=1)
    >>> tuple(net(np.ones((2, 32, 32, 1), "float32")).shape)
    (2, 32)

A pretrained architecture (``weights="imagenet"`` needs a connection)::

    net = feature_network("resnet50", (64, 64), 3, weights="imagenet",
                          trainable=False)
    net(patches).shape  # (B, 2048)
"""

import contextlib
import contextvars
import math
import os

import keras
from keras import ops

from .. import checks
from .megapixel_mnist import networks as _small

__all__ = [
    "FEATURE_NETWORKS",
    "HUB_PREFIX",
    "DTYPE_POLICIES",
    "MIN_PATCH_SIDES",
    "ImagePreprocessing",
    "feature_network",
    "feature_network_name",
    "precision_scope",
]

HUB_PREFIX = "hub:"
"""Feature network names starting with this are ``keras_hub`` presets."""

DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
"""The dtype policies a feature network can run in."""

_PRECISION = contextvars.ContextVar("ats_feature_precision", default="float32")

FEATURE_NETWORKS = ("small", "resnet50", "efficientnetb0", "mobilenetv3small")
"""The names :func:`feature_network` accepts."""

MIN_PATCH_SIDES = {
    "small": _small.MIN_PATCH_SIDE,
    "resnet50": 32,
    "efficientnetb0": 32,
    "mobilenetv3small": 32,
}
"""The smallest patch side each feature network reads (``keras.applications``
refuses inputs smaller than 32x32; the small network's receptive field is 27)."""

FEATURE = _small.FEATURE
"""The name of the feature network, which ``inspect`` looks up."""

# Keras' ImageNet standard deviations (keras.applications.efficientnet): its
# EfficientNet with ImageNet weights divides by them once more after its
# Normalization layer, but only when built with weights="imagenet".
_IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


def _architecture(name):
    """The ``keras.applications`` constructor and module of ``name``."""
    applications = keras.applications
    return {
        "resnet50": (applications.ResNet50, applications.resnet50),
        "efficientnetb0": (applications.EfficientNetB0, applications.efficientnet),
        "mobilenetv3small": (applications.MobileNetV3Small, applications.mobilenet_v3),
    }[name]


@keras.saving.register_keras_serializable(package="ats")
class ImagePreprocessing(keras.layers.Layer):
    """Patches in [0, 1] to the inputs of a pretrained architecture.

    Scales to [0, 255], repeats a single channel to three (RGB), and applies
    ``keras.applications.<module>.preprocess_input`` of the architecture
    (the identity for EfficientNet and MobileNetV3, whose models rescale
    their inputs themselves; "caffe" for ResNet50). For
    ``"efficientnetb0"`` with ``imagenet_stddev=True`` it also divides by
    the ImageNet standard deviations, as Keras' EfficientNet does after its
    normalization only when it downloads the ImageNet weights itself (so a
    weights file gets the same inputs as ``weights="imagenet"``).

    Args:
        architecture: one of the pretrained names of ``FEATURE_NETWORKS``.
        imagenet_stddev: bool, see above (EfficientNet only).

    Input:
        ``(B, h, w, C)`` (or ``(B, C, h, w)``) float in [0, 1], C 1 or 3.

    Returns:
        ``(B, h, w, 3)`` (or ``(B, 3, h, w)``) float32.

    Example:
        >>> import numpy as np
        >>> from ats.models.backbones import ImagePreprocessing
        >>> x = np.full((1, 2, 2, 1), 0.5, "float32")
        >>> y = ImagePreprocessing("resnet50")(x)
        >>> [round(float(v), 2) for v in np.asarray(y)[0, 0, 0]]  # BGR - mean
        [23.56, 10.72, 3.82]
    """

    def __init__(self, architecture, imagenet_stddev=False, **kwargs):
        super().__init__(**kwargs)
        self.architecture = checks.choice(
            "architecture",
            architecture,
            FEATURE_NETWORKS[1:],
            where="ImagePreprocessing",
        )
        self.imagenet_stddev = checks.boolean(
            "imagenet_stddev", imagenet_stddev, where="ImagePreprocessing"
        )

    def _channel_axis(self):
        return -1 if keras.config.image_data_format() == "channels_last" else 1

    def call(self, x):
        x = ops.cast(x, "float32") * 255.0
        if x.shape[self._channel_axis()] == 1:
            x = ops.repeat(x, 3, axis=self._channel_axis())
        x = _architecture(self.architecture)[1].preprocess_input(x)
        if self.imagenet_stddev and self.architecture == "efficientnetb0":
            shape = [1, 1, 1, 1]
            shape[self._channel_axis()] = 3
            x = x * ops.reshape(
                ops.convert_to_tensor(
                    [1 / math.sqrt(s) for s in _IMAGENET_STDDEV_RGB], "float32"
                ),
                shape,
            )
        return x

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[self._channel_axis()] = 3
        return tuple(shape)

    def get_config(self):
        return {
            **super().get_config(),
            "architecture": self.architecture,
            "imagenet_stddev": self.imagenet_stddev,
        }


def _check_weights(name, weights, where):
    """``weights`` as "imagenet", None or the path of an existing file."""
    if weights is None or weights == "imagenet":
        if weights == "imagenet" and name == "small":
            checks.fail(
                "weights",
                'None or the path of a weights file for the "small" feature '
                "network (it has no pretrained weights)",
                weights,
                where,
            )
        return weights
    if not isinstance(weights, (str, os.PathLike)):
        checks.fail(
            "weights",
            '"imagenet", None or the path of a weights file',
            weights,
            where,
            TypeError,
        )
    path = os.fspath(weights)
    if not os.path.isfile(path):
        checks.fail(
            "weights",
            '"imagenet", None or the path of an existing weights file',
            weights,
            where,
        )
    return path


@contextlib.contextmanager
def precision_scope(dtype_policy):
    """Build the feature networks of this block in ``dtype_policy`` (one of
    :data:`DTYPE_POLICIES`; None: float32) unless given one explicitly, e.g.
    around ``ats.models.classifier.build_classifier``.

    Example:
        >>> from ats.models.backbones import feature_network, precision_scope
        >>> with precision_scope("mixed_bfloat16"):
        ...     net = feature_network("small", (32, 32), channels=1)
        >>> net.layers[1].compute_dtype, net.output.dtype
        ('bfloat16', 'float32')
    """
    policy = checks.choice(
        "dtype_policy", dtype_policy or "float32", DTYPE_POLICIES, "precision_scope"
    )
    token = _PRECISION.set(policy)
    try:
        yield policy
    finally:
        _PRECISION.reset(token)


@contextlib.contextmanager
def _global_policy(policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def feature_network(
    name,
    patch_size,
    channels,
    weights=None,
    trainable=True,
    filters=None,
    dtype_policy=None,
):
    """A feature network for patches, by name.

    Args:
        name: one of ``FEATURE_NETWORKS``: ``"small"`` (the Megapixel MNIST
            CNN), ``"resnet50"``, ``"efficientnetb0"``, ``"mobilenetv3small"``
            (``keras.applications``, ``include_top=False``,
            ``pooling="avg"``).
        patch_size: ``(height, width)`` of the patches, at least
            ``MIN_PATCH_SIDES[name]`` on both axes (27 for ``"small"``, 32
            for the others).
        channels: int, channels of the patches: any for ``"small"``, 1
            (grayscale, repeated to RGB) or 3 for the pretrained ones.
        weights: ``"imagenet"`` (the pretrained architectures only; Keras
            downloads them once, so this needs a network connection the
            first time), None (random), or the path of a weights file: for
            ``"small"`` one saved by ``net.save_weights`` of a network of the
            same arguments; for the others a file of the architecture, as
            ``keras.applications.<Architecture>(weights=path)`` loads it
            (e.g. Keras' ``*_notop.h5`` ImageNet file downloaded beforehand,
            or ``net.get_layer(name).save_weights("x.weights.h5")``); the
            inputs are then preprocessed as for ``"imagenet"``.
        trainable: bool; False freezes the whole network (its batch
            normalizations then run in inference mode).
        filters: int or None, channels of the ``"small"`` network's
            convolutions (None: 32); only for ``"small"``.
        dtype_policy: one of :data:`DTYPE_POLICIES`, or None: that of the
            enclosing :func:`precision_scope` (float32 outside one). With a
            mixed policy the features are cast to float32.

    Returns:
        A ``keras.Model`` named ``"feature"`` mapping float32 patches in
        [0, 1] ``(B, *patch_size, channels)`` to features ``(B, D)``: D is
        ``filters`` for ``"small"`` (unit-norm), 2048 for ResNet50, 1280 for
        EfficientNetB0, 576 for MobileNetV3Small. A pretrained
        architecture is its layer named ``name``, after an
        ``ImagePreprocessing``.

    Raises:
        ValueError: an unknown name, a patch smaller than the network reads,
            a channel count a pretrained network cannot take, ``"imagenet"``
            for ``"small"``, a weights path that is not a file.
        TypeError: arguments of the wrong type.

    Example:
        >>> import numpy as np
        >>> from ats.models.backbones import feature_network
        >>> net = feature_network("small", (32, 32), channels=3, filters=8)
        >>> tuple(net(np.ones((2, 32, 32, 3), "float32")).shape)
        (2, 8)
    """
    where = "feature_network"
    name = feature_network_name(name, "name", where)
    policy = checks.choice(
        "dtype_policy", dtype_policy or _PRECISION.get(), DTYPE_POLICIES, where
    )
    if isinstance(name, str) and name.startswith(HUB_PREFIX):
        with _global_policy(policy):
            net = _hub_network(name, patch_size, channels, weights, trainable, where)
        return _float32_features(net, policy)
    with _global_policy(policy):
        net = _named_network(
            name, patch_size, channels, weights, trainable, filters, where
        )
    return _float32_features(net, policy)


def feature_network_name(name, argument="name", where=None):
    """``name`` if it names a feature network: one of
    :data:`FEATURE_NETWORKS`, or ``"hub:<preset>"`` (a ``keras_hub``
    preset name, ``hf://...`` handle or preset folder).

    Args:
        name: the name to check.
        argument: the argument's name, for the error.
        where: the calling function, for the error.

    Returns:
        ``name``.

    Raises:
        ValueError: any other value, e.g. ``"vgg"`` or ``"hub:"``.

    Example:
        >>> from ats.models.backbones import feature_network_name
        >>> feature_network_name("hub:resnet_18_imagenet")
        'hub:resnet_18_imagenet'
    """
    if isinstance(name, str) and name.startswith(HUB_PREFIX):
        if len(name) == len(HUB_PREFIX):
            checks.fail(argument, '"hub:<preset>" with a preset name', name, where)
        return name
    return checks.choice(argument, name, FEATURE_NETWORKS, where)


def _float32_features(net, policy):
    """``net`` itself in float32; under a mixed policy, ``net`` with its
    features cast to float32 (one model named ``"feature"``)."""
    if policy == "float32":
        return net
    outer = keras.Model(
        net.inputs[0],
        keras.layers.Activation("linear", dtype="float32", name="features_float32")(
            net.outputs[0]
        ),
        name=FEATURE,
    )
    outer.trainable = net.trainable
    return outer


def _named_network(name, patch_size, channels, weights, trainable, filters, where):
    """The network of one of :data:`FEATURE_NETWORKS`."""
    patch_size = checks.int_tuple("patch_size", patch_size, length=2, where=where)
    minimum = MIN_PATCH_SIDES[name]
    if min(patch_size) < minimum:
        checks.fail(
            "patch_size",
            f"at least {minimum}x{minimum} for the {name!r} feature network",
            patch_size,
            where,
        )
    channels = checks.integer("channels", channels, minimum=1, where=where)
    weights = _check_weights(name, weights, where)
    trainable = checks.boolean("trainable", trainable, where=where)
    if name == "small":
        filters = 32 if filters is None else filters
        filters = checks.integer("filters", filters, minimum=1, where=where)
        net = _small.feature_network(patch_size, filters, channels)
        if weights is not None:
            net.load_weights(weights)
        net.trainable = trainable
        return net
    if filters is not None:
        checks.fail("filters", f"None for the {name!r} feature network", filters, where)
    if channels not in (1, 3):
        checks.fail(
            "channels",
            f"1 (grayscale) or 3 (RGB) for the pretrained {name!r} network",
            channels,
            where,
        )
    constructor = _architecture(name)[0]
    if keras.config.image_data_format() == "channels_last":
        shape, base_shape = (*patch_size, channels), (*patch_size, 3)
    else:
        shape, base_shape = (channels, *patch_size), (3, *patch_size)
    base = constructor(
        include_top=False,
        weights=weights,
        input_shape=base_shape,
        pooling="avg",
        name=name,
    )
    base.trainable = trainable
    patches = keras.Input(shape, dtype="float32", name="patches")
    preprocessing = ImagePreprocessing(
        name, imagenet_stddev=weights not in (None, "imagenet"), name="preprocessing"
    )
    net = keras.Model(patches, base(preprocessing(patches)), name=FEATURE)
    net.trainable = trainable
    return net


def _hub_network(name, patch_size, channels, weights, trainable, where):
    """A ``keras_hub`` backbone by preset (``"hub:<preset>"``), pooled."""
    preset = name[len(HUB_PREFIX) :]
    patch_size = checks.int_tuple("patch_size", patch_size, length=2, where=where)
    channels = checks.integer("channels", channels, minimum=1, where=where)
    if channels not in (1, 3):
        checks.fail(
            "channels", f"1 (grayscale) or 3 (RGB) for {name!r}", channels, where
        )
    trainable = checks.boolean("trainable", trainable, where=where)
    if weights is not None and weights != "imagenet":
        weights = _check_weights(name, weights, where)
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            f"{where}: the feature network {name!r} needs keras_hub: pip "
            f"install keras-hub ({error})"
        ) from error
    if keras.config.image_data_format() != "channels_last":
        checks.fail(
            "name", "a keras.applications network with channels_first", name, where
        )
    base = keras_hub.models.Backbone.from_preset(
        preset, load_weights=weights == "imagenet", image_shape=(*patch_size, 3)
    )
    if weights not in (None, "imagenet"):
        base.load_weights(weights)
    base.trainable = trainable
    scale, offset = _hub_rescaling(keras_hub, preset)
    patches = keras.Input((*patch_size, channels), dtype="float32", name="patches")
    x = HubPreprocessing(scale, offset, name="preprocessing")(patches)
    features = base(x)
    if isinstance(features, dict):  # e.g. a feature pyramid: its last level
        features = features[sorted(features)[-1]]
    if len(features.shape) == 4:
        features = keras.layers.GlobalAveragePooling2D(name="pooling")(features)
    elif len(features.shape) == 3:
        features = ClassToken(name="pooling")(features)
    net = keras.Model(patches, features, name=FEATURE)
    net.trainable = trainable
    return net


def _hub_rescaling(keras_hub, preset):
    """``(scale, offset)`` of the preset's ``ImageConverter`` on [0, 255]
    pixels, or ``(1 / 255, 0)`` (inputs in [0, 1]) when it has none."""
    try:
        converter = keras_hub.layers.ImageConverter.from_preset(preset)
    except (ValueError, FileNotFoundError):
        return 1 / 255, 0.0
    scale = 1 / 255 if converter.scale is None else converter.scale
    offset = 0.0 if converter.offset is None else converter.offset
    return scale, offset


@keras.saving.register_keras_serializable(package="ats")
class HubPreprocessing(keras.layers.Layer):
    """Patches in [0, 1] to a ``keras_hub`` backbone's inputs: to [0, 255],
    gray repeated to RGB, then ``x * scale + offset`` (per channel when
    given three values), as the preset's ``ImageConverter`` would.

    Args:
        scale, offset: floats or three per channel.

    Example:
        >>> import numpy as np
        >>> from ats.models.backbones import HubPreprocessing
        >>> layer = HubPreprocessing(1 / 255, 0.0)
        >>> np.asarray(layer(np.full((1, 1, 1, 1), 0.5, "float32")))[0, 0, 0]
        array([0.5, 0.5, 0.5], dtype=float32)
    """

    def __init__(self, scale, offset, **kwargs):
        super().__init__(**kwargs)
        self.scale = [float(v) for v in _three(scale)]
        self.offset = [float(v) for v in _three(offset)]

    def call(self, x):
        x = ops.cast(x, "float32") * 255.0
        if x.shape[-1] == 1:
            x = ops.repeat(x, 3, axis=-1)
        return x * ops.convert_to_tensor(self.scale) + ops.convert_to_tensor(
            self.offset
        )

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


def _three(value):
    values = list(value) if isinstance(value, (list, tuple)) else [value] * 3
    return values if len(values) == 3 else values[:1] * 3


@keras.saving.register_keras_serializable(package="ats")
class ClassToken(keras.layers.Layer):
    """The first token of a sequence ``(B, N, D) -> (B, D)`` (a vision
    transformer's class token)."""

    def call(self, x):
        return x[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
