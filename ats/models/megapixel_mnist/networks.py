"""The paper's attention and feature networks, and the names of a model's parts.

The feature convolutions use ``valid`` padding and strides 2, 2, 1, 1: on a
50x50 patch they give 22, 10, 8 and 6 pixels wide maps and a receptive field
of 27 pixels, about one 28x28 digit, at about 2.6 M multiply-adds per patch
(the paper's stride-1 stack costs 18 times more, which makes the full-image
baseline impractical on a CPU).
"""

import keras
from keras import layers

from ... import checks
from ...utils.layers import L2Normalize, LocalContrast, SampleSoftmax

__all__ = [
    "ATTENTION",
    "CLASSIFIER",
    "FEATURE",
    "MIN_PATCH_SIDE",
    "attention_network",
    "attention_with_prior",
    "feature_convolutions",
    "feature_network",
]

ATTENTION, FEATURE, CLASSIFIER = "attention", "feature", "classifier"
"""Names of a model's parts, which ``inspect`` looks up."""
MIN_PATCH_SIDE = 27
"""The feature network's receptive field: the smallest patch side it reads."""
# Kernel sizes and strides of the feature network's convolutions.
_FEATURE_CONVOLUTIONS = ((7, 2), (3, 2), (3, 1), (3, 1))


def attention_network(filters=8, smooth=1e-4, prior_strength=0.0, channels=None):
    """The paper's attention network for the low-resolution view.

    Three 3x3 convolutions with ``padding="same"`` (two ``tanh`` ones with
    ``filters`` channels, then one to a single channel) and a softmax over
    all positions, so the attention map has the low view's spatial shape and
    ``receptive_field=0``.

    Args:
        filters: int, channels of the two hidden convolutions.
        smooth: float in [0, 1), weight of the uniform distribution mixed
            into the attention (``SampleSoftmax(smooth=...)``).
        prior_strength: float >= 0, weight of the content prior added to
            the logits (:func:`attention_with_prior`); 0: none, the paper's
            network.
        channels: int, the low views' channels; needed with a prior.

    Returns:
        A Keras model named ``"attention"`` mapping ``(B, h, w, C)`` to an
        attention distribution ``(B, h, w)``.

    Example:
        >>> import numpy as np
        >>> from ats.models.megapixel_mnist import attention_network
        >>> attention = attention_network()(np.ones((2, 18, 18, 1), "float32"))
        >>> tuple(attention.shape)
        (2, 18, 18)
        >>> net = attention_network(prior_strength=6.0, channels=1)
        >>> tuple(net(np.ones((2, 18, 18, 1), "float32")).shape)
        (2, 18, 18)
    """
    filters = checks.integer("filters", filters, minimum=1, where="attention_network")
    convolutions = [
        layers.Conv2D(filters, 3, padding="same", activation="tanh"),
        layers.Conv2D(filters, 3, padding="same", activation="tanh"),
        layers.Conv2D(1, 3, padding="same"),
    ]
    softmax = SampleSoftmax(squeeze_channels=True, smooth=smooth)
    return attention_with_prior(convolutions, softmax, prior_strength, channels)


def attention_with_prior(convolutions, softmax, prior_strength, channels, crop=0):
    """An attention network: ``convolutions`` to one channel of logits, plus
    an optional content prior, then ``softmax``.

    The prior is ``ats.utils.layers.LocalContrast`` of the low view (
    ``prior_strength`` at its most contrasted pixel), so that an untrained
    network already attends to structures (digits, scribbles, tissue)
    rather than flat background, and its first samples give the feature
    network something to learn from. The estimator stays unbiased: the prior
    is part of the attention distribution that is sampled and
    differentiated; the network's logits can outweigh it as they learn.

    Args:
        convolutions: list of Keras layers, the low view ``(B, h, w, C)`` to
            logits ``(B, h - 2 crop, w - 2 crop, 1)``.
        softmax: the ``SampleSoftmax`` layer (squeezing the channel).
        prior_strength: float >= 0; 0 gives ``keras.Sequential([*convolutions,
            softmax])``, the network without a prior.
        channels: int, the low views' channels (needed with a prior: the
            network is then a functional model on ``(None, None, channels)``).
        crop: int, cells the logits lose on each side (``valid`` padding),
            cropped from the prior too.

    Returns:
        A Keras model named ``"attention"``: ``(B, h, w, C) -> (B, h', w')``.
    """
    where = "attention_network"
    prior_strength = checks.real(
        "prior_strength", prior_strength, minimum=0, where=where
    )
    if not prior_strength:
        return keras.Sequential([*convolutions, softmax], name=ATTENTION)
    channels = checks.integer("channels", channels, minimum=1, where=where)
    if keras.config.image_data_format() == "channels_last":
        x = keras.Input((None, None, channels), name="low_view")
    else:
        x = keras.Input((channels, None, None), name="low_view")
    logits = x
    for layer in convolutions:
        logits = layer(logits)
    prior = LocalContrast(strength=prior_strength, name="content_prior")(x)
    if crop:
        prior = layers.Cropping2D(crop)(prior)
    return keras.Model(x, softmax(layers.Add()([logits, prior])), name=ATTENTION)


def feature_convolutions(filters):
    """The feature network's four ``valid`` ReLU convolutions (7x7 stride 2,
    3x3 stride 2, 3x3, 3x3) with ``filters`` channels, new each call.

    Returns:
        A list of four ``keras.layers.Conv2D``.
    """
    return [
        layers.Conv2D(filters, kernel, strides=strides, activation="relu")
        for kernel, strides in _FEATURE_CONVOLUTIONS
    ]


def feature_network(patch_size=(50, 50), filters=32, channels=1):
    """The paper's feature network for high-resolution patches.

    Four ``valid`` ReLU convolutions (7x7 stride 2, 3x3 stride 2, 3x3, 3x3)
    with ``filters`` channels, global max pooling and ``L2Normalize``.

    Args:
        patch_size: ``(height, width)`` of the patches, at least 27x27 (the
            network's receptive field).
        filters: int, channels of every convolution (the feature size).
        channels: int, channels of the images.

    Returns:
        A ``keras.Sequential`` named ``"feature"`` mapping patches
        ``(B, *patch_size, channels)`` to unit-norm features
        ``(B, filters)``.

    Example:
        >>> import numpy as np
        >>> from ats.models.megapixel_mnist import feature_network
        >>> net = feature_network((30, 30), filters=4)
        >>> tuple(net(np.ones((5, 30, 30, 1), "float32")).shape)
        (5, 4)
    """
    where = "feature_network"
    filters = checks.integer("filters", filters, minimum=1, where=where)
    channels = checks.integer("channels", channels, minimum=1, where=where)
    patch_size = checks.int_tuple(
        "patch_size", patch_size, length=2, minimum=MIN_PATCH_SIDE, where=where
    )
    return keras.Sequential(
        [
            keras.Input((*patch_size, channels)),
            *feature_convolutions(filters),
            layers.GlobalMaxPooling2D(),
            L2Normalize(),
        ],
        name=FEATURE,
    )
