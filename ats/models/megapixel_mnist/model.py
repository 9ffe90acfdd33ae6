"""The attention-sampling model of the Megapixel MNIST experiment."""

import keras
from keras import layers

from ... import checks
from ...core import attention_sampling
from ...utils.regularizers import MultinomialEntropy
from .networks import CLASSIFIER, attention_network, feature_network

__all__ = ["ats_model"]


def ats_model(
    low_shape,
    high_shape,
    n_classes=10,
    n_patches=10,
    patch_size=(50, 50),
    regularizer_strength=1e-4,
    replace=False,
    filters=32,
    attention_filters=8,
    attention_prior=0.0,
    seed=None,
):
    """The attention-sampling model of the Megapixel MNIST experiment.

    Args:
        low_shape: ``(h, w, C)`` of the low-resolution view.
        high_shape: ``(H, W, C)`` of the high-resolution view.
        n_classes: int, the number of classes.
        n_patches: int, patches sampled per image.
        patch_size: ``(height, width)`` of the patches in the high view.
        regularizer_strength: float, weight of the attention's entropy
            regularizer (``MultinomialEntropy``); 0 disables it.
        replace: bool, sample patches with replacement.
        filters: int, channels of the feature network.
        attention_filters: int, channels of the attention network.
        attention_prior: float >= 0, weight of the attention's content prior
            (``attention_network(prior_strength=...)``); 0: none.
        seed: int or None, seed of the patch sampling.

    Returns:
        An uncompiled ``keras.Model`` ``[x_low (B, h, w, C), x_high
        (B, H, W, C)] -> probabilities (B, n_classes)``. Its parts are the
        layers ``"attention"``, ``"feature"``, ``"classifier"`` and a
        ``SamplePatches``; ``inspect`` uses them.

    Example:
        >>> import numpy as np
        >>> from ats.models.megapixel_mnist import ats_model
        >>> model = ats_model((16, 16, 1), (96, 96, 1), n_patches=3,
        ...                   patch_size=(30, 30), filters=4, seed=0)
        >>> x_low, x_high = np.ones((2, 16, 16, 1)), np.ones((2, 96, 96, 1))
        >>> model.predict([x_low, x_high], verbose=0).shape
        (2, 10)
    """
    where = "ats_model"
    low_shape = checks.int_tuple("low_shape", low_shape, length=3, where=where)
    high_shape = checks.int_tuple("high_shape", high_shape, length=3, where=where)
    n_classes = checks.integer("n_classes", n_classes, minimum=1, where=where)
    if low_shape[-1] != high_shape[-1]:
        checks.fail(
            "high_shape",
            f"an image shape with the channels of `low_shape` {low_shape}",
            high_shape,
            where,
        )
    regularizer_strength = checks.real(
        "regularizer_strength", regularizer_strength, minimum=0, where=where
    )
    x_low, x_high = keras.Input(low_shape), keras.Input(high_shape)
    regularizer = (
        MultinomialEntropy(regularizer_strength) if regularizer_strength else None
    )
    features, _, _ = attention_sampling(
        attention_network(
            attention_filters, prior_strength=attention_prior, channels=low_shape[-1]
        ),
        feature_network(patch_size, filters, high_shape[-1]),
        patch_size=tuple(patch_size),
        n_patches=n_patches,
        replace=replace,
        attention_regularizer=regularizer,
        seed=seed,
    )([x_low, x_high])
    y = layers.Dense(n_classes, activation="softmax", name=CLASSIFIER)(features)
    return keras.Model([x_low, x_high], y, name="ats")
