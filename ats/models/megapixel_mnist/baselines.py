"""The CNN baselines that attention sampling is compared with."""

import keras
from keras import layers

from ... import checks
from ...utils.layers import L2Normalize
from .networks import CLASSIFIER, feature_convolutions

__all__ = ["full_image_cnn", "low_res_cnn"]


def full_image_cnn(high_shape, n_classes=10, filters=32):
    """The classical architecture: the feature network on the whole image.

    The same four convolutions as ``feature_network``, applied
    convolutionally to the full high-resolution image, then global max
    pooling, ``L2Normalize`` and a ``Dense`` softmax. Its compute and memory
    grow with the image's area.

    Args:
        high_shape: ``(H, W, C)`` of the high-resolution view.
        n_classes: int, the number of classes.
        filters: int, channels of every convolution.

    Returns:
        An uncompiled ``keras.Model`` ``x_high (B, H, W, C) -> probabilities
        (B, n_classes)``.

    Example:
        >>> from ats.models.megapixel_mnist import full_image_cnn
        >>> full_image_cnn((96, 96, 1), n_classes=3, filters=4).output_shape
        (None, 3)
    """
    where = "full_image_cnn"
    shape = checks.int_tuple("high_shape", high_shape, length=3, where=where)
    return _image_classifier(
        shape, n_classes, filters, feature_convolutions, where, "full_cnn"
    )


def low_res_cnn(low_shape, n_classes=10, filters=32):
    """A CNN that sees only the low-resolution view.

    Four 3x3 ReLU convolutions (``same`` padding, the third with stride 2),
    global max pooling, ``L2Normalize`` and a ``Dense`` softmax.

    Args:
        low_shape: ``(h, w, C)`` of the low-resolution view.
        n_classes, filters: As for :func:`full_image_cnn`.

    Returns:
        An uncompiled ``keras.Model`` ``x_low (B, h, w, C) -> (B, n_classes)``.

    Example:
        >>> from ats.models.megapixel_mnist import low_res_cnn
        >>> low_res_cnn((16, 16, 1), n_classes=3, filters=4).output_shape
        (None, 3)
    """
    shape = checks.int_tuple("low_shape", low_shape, length=3, where="low_res_cnn")
    return _image_classifier(
        shape, n_classes, filters, _low_res_convolutions, "low_res_cnn", "low_cnn"
    )


def _low_res_convolutions(filters):
    """Four 3x3 ReLU convolutions with ``same`` padding, the third strided."""
    return [
        layers.Conv2D(filters, 3, strides=strides, padding="same", activation="relu")
        for strides in (1, 1, 2, 1)
    ]


def _image_classifier(shape, n_classes, filters, convolutions, where, name):
    """``convolutions(filters)`` on images of ``shape``, then global max
    pooling, ``L2Normalize`` and a ``Dense`` softmax: the baselines' common
    head, with the builders' argument checks (``where`` names the builder)."""
    n_classes = checks.integer("n_classes", n_classes, minimum=1, where=where)
    filters = checks.integer("filters", filters, minimum=1, where=where)
    return keras.Sequential(
        [
            keras.Input(shape),
            *convolutions(filters),
            layers.GlobalMaxPooling2D(),
            L2Normalize(),
            layers.Dense(n_classes, activation="softmax", name=CLASSIFIER),
        ],
        name=name,
    )
