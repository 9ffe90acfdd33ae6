"""An attention-sampling classifier for images of any size, read lazily.

:func:`build_classifier` combines an attention network on the low-resolution
view (:func:`attention_network`), a feature network chosen by name
(:func:`ats.models.backbones.feature_network`: the small CNN or a
``keras.applications`` architecture) and a ``Dense`` softmax, with
``ats.lazy.lazy_attention_sampling`` called on ``[x_low, x_high_ref,
support]``: the batches of ``ats.lazy.BucketedSequence``, whose low views of
different shapes are zero-padded to a few bucket shapes, with wide reference
rows (each image's own scale) and supports (the attention is restricted to
each image and its foreground mask). :func:`inspect` runs such a model step
by step and returns what it looked at.

Example:
    >>> import numpy as np
    >>> from ats.data import ArraySource
    >>> from ats.lazy import BucketedSequence
    >>> from ats.models.classifier import build_classifier
    >>> model = build_classifier(channels=1, n_classes=2, patch_size=(32, 32),
    ...                          n_patches=2, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> images = [rng.random(shape, "float32") for shape in
    ...           ((128, 96, 1), (96, 160, 1))]
    >>> sources = [ArraySource(x, low=x[::4, ::4]) for x in images]
    >>> model.predict(BucketedSequence(sources, batch_size=1), verbose=0).shape
    (2, 2)
"""

import keras
import numpy as np
from keras import layers

from .. import checks
from ..backends.keras_internals import flatten_layers
from ..core import SamplePatches
from ..core.inspection import inspect_step
from ..lazy import lazy_attention_sampling
from ..utils.layers import SampleSoftmax
from ..utils.regularizers import MultinomialEntropy
from . import megapixel_mnist
from .backbones import feature_network, feature_network_name
from .megapixel_mnist.networks import (
    ATTENTION,
    CLASSIFIER,
    FEATURE,
    attention_with_prior,
)

__all__ = ["attention_network", "build_classifier", "inspect"]


def attention_network(
    filters=8, receptive_field=0, smooth=1e-4, prior_strength=0.0, channels=None
):
    """An attention network on low-resolution views of any size.

    Args:
        filters: int, channels of the hidden convolutions.
        receptive_field: 0 for the Megapixel MNIST attention network (three
            3x3 convolutions with ``padding="same"``: the attention map has
            the low view's shape), or an odd int >= 3: ``(receptive_field -
            1) / 2`` 3x3 convolutions with ``padding="valid"`` (``tanh``
            with ``filters`` channels, the last one to a single channel),
            whose receptive field it is; the map is then ``receptive_field -
            1`` cells smaller than the low view on each axis. Pass the same
            value to ``attention_sampling``.
        smooth: float in [0, 1), weight of the uniform distribution mixed
            into the attention (``SampleSoftmax``).
        prior_strength: float >= 0, the weight of a content prior added to
            the logits: ``ats.utils.layers.LocalContrast`` of the low view
            (1 at its most contrasted pixel), so that an untrained network
            already attends to structures rather than flat background; 0
            disables it. The estimator stays unbiased: the prior is part of
            the attention distribution that is sampled and differentiated.
        channels: int, the low views' channels; needed with a prior (the
            network is then a functional model).

    Returns:
        A Keras model named ``"attention"`` mapping ``(B, h, w, C)`` to an
        attention distribution ``(B, h', w')``.

    Example:
        >>> import numpy as np
        >>> from ats.models.classifier import attention_network
        >>> net = attention_network(4, receptive_field=9)
        >>> tuple(net(np.ones((2, 20, 30, 3), "float32")).shape)
        (2, 12, 22)
        >>> net = attention_network(4, prior_strength=3.0, channels=1)
        >>> tuple(net(np.ones((2, 20, 30, 1), "float32")).shape)
        (2, 20, 30)
    """
    where = "attention_network"
    filters = checks.integer("filters", filters, minimum=1, where=where)
    receptive_field = checks.integer(
        "receptive_field", receptive_field, minimum=0, where=where
    )
    if receptive_field == 0:
        return megapixel_mnist.attention_network(
            filters, smooth, prior_strength, channels
        )
    if receptive_field < 3 or receptive_field % 2 == 0:
        checks.fail("receptive_field", "0 or an odd int >= 3", receptive_field, where)
    n_convolutions = (receptive_field - 1) // 2
    convolutions = [
        layers.Conv2D(filters, 3, padding="valid", activation="tanh")
        for _ in range(n_convolutions - 1)
    ]
    convolutions.append(layers.Conv2D(1, 3, padding="valid"))
    softmax = SampleSoftmax(squeeze_channels=True, smooth=smooth)
    return attention_with_prior(
        convolutions, softmax, prior_strength, channels, crop=receptive_field // 2
    )


def build_classifier(
    channels,
    n_classes,
    feature="small",
    patch_size=(64, 64),
    n_patches=10,
    attention_filters=8,
    receptive_field=0,
    regularizer_strength=1e-4,
    feature_weights=None,
    freeze_feature=False,
    seed=None,
    replace=False,
    feature_filters=None,
    prior_strength=0.0,
):
    """An attention-sampling classifier of images of any size.

    :func:`attention_network` on the low view, the attention restricted to
    the support, ``n_patches`` patches sampled and read from the sources,
    the feature network named ``feature`` on each
    (:func:`ats.models.backbones.feature_network`), their expectation and a
    ``Dense`` softmax (``ats.lazy.lazy_attention_sampling``).

    Args:
        channels: int, channels of the images (1 or 3 for a pretrained
            feature network).
        n_classes: int >= 2, the number of classes.
        feature: a name of ``ats.models.backbones.FEATURE_NETWORKS``, or
            ``"hub:<preset>"`` (``ats.models.backbones.feature_network``).
        patch_size: ``(height, width)`` of the patches in full-resolution
            pixels.
        n_patches: int, patches sampled per image.
        attention_filters: int, channels of the attention network.
        receptive_field: 0 or an odd int >= 3, see :func:`attention_network`.
        regularizer_strength: float, weight of the attention's entropy
            regularizer (``MultinomialEntropy``); 0 disables it.
        feature_weights: ``"imagenet"``, None or a weights file, the
            ``weights`` of ``feature_network``.
        freeze_feature: bool, freeze the feature network.
        seed: int or None, seed of the patch sampling.
        replace: bool, sample patches with replacement.
        feature_filters: int or None, channels of the ``"small"`` feature
            network (None: 32).
        prior_strength: float >= 0, the attention's content prior (see
            :func:`attention_network`); 0 disables it.

    Returns:
        An uncompiled ``keras.Model`` ``[x_low (B, h, w, C) float32 in
        [0, 1], x_high_ref (B, 5) int32 wide rows, support (B, h, w)
        float32] -> probabilities (B, n_classes)``, batches as
        ``ats.lazy.BucketedSequence`` yields them (any ``h, w``). Its parts
        are the layers ``"attention"``, ``"feature"``, ``"classifier"`` and
        a ``SourcePatches``; :func:`inspect` uses them.

    Example:
        >>> from ats.models.classifier import build_classifier
        >>> model = build_classifier(3, 4, patch_size=(32, 32), n_patches=3)
        >>> [tuple(x.shape) for x in model.inputs], model.output_shape
        ([(None, None, None, 3), (None, 5), (None, None, None)], (None, 4))
    """
    where = "build_classifier"
    channels = checks.integer("channels", channels, minimum=1, where=where)
    n_classes = checks.integer("n_classes", n_classes, minimum=2, where=where)
    feature = feature_network_name(feature, "feature", where)
    patch_size = checks.int_tuple("patch_size", patch_size, length=2, where=where)
    freeze_feature = checks.boolean("freeze_feature", freeze_feature, where=where)
    regularizer_strength = checks.real(
        "regularizer_strength", regularizer_strength, minimum=0, where=where
    )
    attention = attention_network(
        attention_filters,
        receptive_field,
        prior_strength=prior_strength,
        channels=channels,
    )
    features_net = feature_network(
        feature,
        patch_size,
        channels,
        weights=feature_weights,
        trainable=not freeze_feature,
        filters=feature_filters,
    )
    if keras.config.image_data_format() == "channels_last":
        low_shape = (None, None, channels)
    else:
        low_shape = (channels, None, None)
    x_low = keras.Input(low_shape, dtype="float32", name="x_low")
    x_high_ref = keras.Input((5,), dtype="int32", name="x_high_ref")
    support = keras.Input((None, None), dtype="float32", name="support")
    regularizer = (
        MultinomialEntropy(regularizer_strength) if regularizer_strength else None
    )
    features, _, _ = lazy_attention_sampling(
        attention,
        features_net,
        patch_size=patch_size,
        n_patches=n_patches,
        replace=replace,
        attention_regularizer=regularizer,
        receptive_field=receptive_field,
        seed=seed,
    )([x_low, x_high_ref, support])
    y = layers.Dense(n_classes, activation="softmax", name=CLASSIFIER)(features)
    return keras.Model([x_low, x_high_ref, support], y, name="ats_classifier")


def _parts(model):
    """The sampler and the named parts of a :func:`build_classifier` model
    (also nested, e.g. in a distribution wrapper)."""
    named, sampler = {}, None
    for layer in flatten_layers(model):
        named.setdefault(layer.name, layer)
        if sampler is None and isinstance(layer, SamplePatches):
            sampler = layer
    missing = [n for n in (ATTENTION, FEATURE, CLASSIFIER) if n not in named]
    if sampler is None or missing:
        checks.fail(
            "model",
            "a model built by build_classifier (with layers 'attention', "
            "'feature', 'classifier' and a SourcePatches)",
            model.name,
            "inspect",
        )
    return sampler, named[ATTENTION], named[FEATURE], named[CLASSIFIER]


def inspect(model, x_low, x_high_ref, support=None, deterministic=False, seed=None):
    """Run a :func:`build_classifier` model step by step: what it looked at.

    Its attention network on ``x_low``, restricted to ``support``, the
    sampling of ``ats.core.sample`` (or the top-``n_patches`` positions),
    the patches read from the sources ``x_high_ref`` refers to, its feature
    network, the expectation and its classifier: the probabilities are its
    prediction from exactly the returned patches.

    Args:
        model: a model built by :func:`build_classifier`.
        x_low: ``(B, h, w, C)`` float32 low views (padded, as
            ``BucketedSequence`` yields them).
        x_high_ref: ``(B, 5)`` wide references of live sources
            (``PatchSource.reference(low_shape)``).
        support: ``(B, h, w)`` supports; None: all of ``x_low``.
        deterministic: bool, take the most attended positions instead of
            sampling.
        seed: int or None, the seed of the sampling.

    Returns:
        A dict of numpy arrays: ``attention`` ``(B, h', w')`` (restricted to
        the support), ``corners`` ``(B, N, 2)`` in full-resolution pixels,
        ``patches`` ``(B, N, ph, pw, C)`` in [0, 1], ``sampled_attention``
        ``(B, N)`` and ``probabilities`` ``(B, n_classes)``.

    Example:
        >>> import numpy as np
        >>> from ats.data import ArraySource
        >>> from ats.lazy import BucketedSequence
        >>> from ats.models.classifier import build_classifier, inspect
        >>> model = build_classifier(1, 2, patch_size=(32, 32), n_patches=2)
        >>> x = np.random.default_rng(0).random((96, 128, 1), "float32")
        >>> batches = BucketedSequence([ArraySource(x, low=x[::4, ::4])],
        ...                            batch_size=1)
        >>> (x_low, x_high_ref, support), = batches[0]
        >>> seen = inspect(model, x_low, x_high_ref, support, seed=0)
        >>> seen["patches"].shape, seen["probabilities"].shape
        ((1, 2, 32, 32, 1), (1, 2))
    """
    sampler, attention, feature, head = _parts(model)
    x_low = np.asarray(x_low, dtype="float32")
    if support is None:
        if keras.config.image_data_format() == "channels_last":
            spatial = x_low.shape[1:-1]
        else:
            spatial = x_low.shape[2:]
        support = np.ones((x_low.shape[0], *spatial), "float32")
    seen = inspect_step(
        sampler,
        attention,
        feature,
        head,
        x_low,
        np.asarray(x_high_ref, dtype="int32"),
        deterministic,
        seed,
        support=np.asarray(support, dtype="float32"),
    )
    seen["probabilities"] = seen.pop("outputs")
    return seen
