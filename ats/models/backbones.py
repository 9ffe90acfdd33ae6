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

import math
import os

import keras
from keras import ops

from .. import checks
from .megapixel_mnist import networks as _small

__all__ = [
    "FEATURE_NETWORKS",
    "MIN_PATCH_SIDES",
    "ImagePreprocessing",
    "feature_network",
]

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


def feature_network(
    name, patch_size, channels, weights=None, trainable=True, filters=None
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
    name = checks.choice("name", name, FEATURE_NETWORKS, where)
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
