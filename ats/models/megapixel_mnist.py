"""The models of the Megapixel MNIST experiment (paper, section 4.2).

* :func:`ats_model`: attention sampling. The paper's attention network (three
  3x3 ``tanh`` convolutions to one channel and ``SampleSoftmax``) looks at the
  low-resolution view; ``n_patches`` patches of the high-resolution view are
  sampled from its attention; the paper's feature network (four ReLU
  convolutions, 7x7 then 3x3, global max pooling, ``L2Normalize``) runs on
  each; a ``Dense`` softmax classifies their expected features.
* :func:`full_image_cnn`: the "classical architecture" it is compared with:
  the *same* convolution stack applied to the whole high-resolution image,
  global max pooling, ``L2Normalize`` and ``Dense``.
* :func:`low_res_cnn`: a CNN on the low-resolution view alone.

Every builder returns an uncompiled ``keras.Model`` mapping its inputs to
class probabilities ``(B, n_classes)``. :func:`inspect` runs an
attention-sampling model step by step and returns what it looked at (the
attention map, the patch corners, the patches) for pictures.

The feature convolutions use ``valid`` padding and strides 2, 2, 1, 1: on a
50x50 patch they give 22, 10, 8 and 6 pixels wide maps and a receptive field
of 27 pixels, about one 28x28 digit, at about 2.6 M multiply-adds per patch
(the paper's stride-1 stack costs 18 times more, which makes the full-image
baseline impractical on a CPU).

Example::

    from ats.models import megapixel_mnist as models

    model = models.ats_model((180, 180, 1), (1500, 1500, 1))
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    seen = models.inspect(model, x_low[:2], x_high[:2])
    seen["attention"].shape, seen["corners"].shape  # (2, 180, 180), (2, 10, 2)
"""

import keras
import numpy as np
from keras import layers, ops

from ..core import SamplePatches, attention_sampling, expected, sample
from ..data import FromTensors
from ..utils.layers import L2Normalize, SampleSoftmax
from ..utils.regularizers import MultinomialEntropy

__all__ = [
    "attention_network",
    "feature_network",
    "ats_model",
    "full_image_cnn",
    "low_res_cnn",
    "inspect",
    "MODELS",
]

# Kernel sizes and strides of the feature network's convolutions.
_FEATURE_CONVOLUTIONS = ((7, 2), (3, 2), (3, 1), (3, 1))
# Names of the parts `inspect` looks up in an attention-sampling model.
_ATTENTION, _FEATURE, _CLASSIFIER = "attention", "feature", "classifier"


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}")
    return int(value)


def _image_shape(name, shape):
    """``shape`` as a tuple ``(height, width, channels)`` of positive ints."""
    try:
        shape = tuple(shape)
    except TypeError:
        shape = None
    if (
        shape is None
        or len(shape) != 3
        or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
            for s in shape
        )
    ):
        raise ValueError(
            f"`{name}` must be an image shape (height, width, channels) of "
            f"positive ints, got {shape!r}"
        )
    return tuple(int(s) for s in shape)


def attention_network(filters=8, smooth=1e-4):
    """The paper's attention network for the low-resolution view.

    Three 3x3 convolutions with ``padding="same"`` (two ``tanh`` ones with
    ``filters`` channels, then one to a single channel) and a softmax over
    all positions, so the attention map has the low view's spatial shape and
    ``receptive_field=0``.

    Args:
        filters: int, channels of the two hidden convolutions.
        smooth: float in [0, 1), weight of the uniform distribution mixed
            into the attention (``SampleSoftmax(smooth=...)``).

    Returns:
        A ``keras.Sequential`` named ``"attention"`` mapping ``(B, h, w, C)``
        to an attention distribution ``(B, h, w)``.
    """
    filters = _positive_int("filters", filters)
    return keras.Sequential(
        [
            layers.Conv2D(filters, 3, padding="same", activation="tanh"),
            layers.Conv2D(filters, 3, padding="same", activation="tanh"),
            layers.Conv2D(1, 3, padding="same"),
            SampleSoftmax(squeeze_channels=True, smooth=smooth),
        ],
        name=_ATTENTION,
    )


def _feature_convolutions(filters):
    """The feature network's four ReLU convolutions (7x7, then 3x3)."""
    return [
        layers.Conv2D(filters, kernel, strides=strides, activation="relu")
        for kernel, strides in _FEATURE_CONVOLUTIONS
    ]


def feature_network(patch_size=(50, 50), filters=32, channels=1):
    """The paper's feature network for high-resolution patches.

    Four ``valid`` ReLU convolutions (7x7 stride 2, 3x3 stride 2, 3x3, 3x3)
    with ``filters`` channels, global max pooling and ``L2Normalize``.

    Args:
        patch_size: ``(height, width)`` of the patches, at least 27x27.
        filters: int, channels of every convolution (the feature size).
        channels: int, channels of the images.

    Returns:
        A ``keras.Sequential`` named ``"feature"`` mapping patches
        ``(B, *patch_size, channels)`` to unit-norm features
        ``(B, filters)``.
    """
    filters = _positive_int("filters", filters)
    channels = _positive_int("channels", channels)
    patch_size = tuple(patch_size)
    if (
        len(patch_size) != 2
        or min(_positive_int("patch_size", s) for s in patch_size) < 27
    ):
        raise ValueError(
            "`patch_size` must be (height, width) with both at least 27 "
            f"(the feature network's receptive field), got {patch_size!r}"
        )
    return keras.Sequential(
        [
            keras.Input((*patch_size, channels)),
            *_feature_convolutions(filters),
            layers.GlobalMaxPooling2D(),
            L2Normalize(),
        ],
        name=_FEATURE,
    )


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
        seed: int or None, seed of the patch sampling.

    Returns:
        An uncompiled ``keras.Model`` ``[x_low (B, h, w, C), x_high
        (B, H, W, C)] -> probabilities (B, n_classes)``. Its parts are the
        layers ``"attention"``, ``"feature"``, ``"classifier"`` and a
        ``SamplePatches``; :func:`inspect` uses them.
    """
    low_shape = _image_shape("low_shape", low_shape)
    high_shape = _image_shape("high_shape", high_shape)
    n_classes = _positive_int("n_classes", n_classes)
    if low_shape[-1] != high_shape[-1]:
        raise ValueError(
            "`low_shape` and `high_shape` must have the same channels, got "
            f"{low_shape} and {high_shape}"
        )
    if regularizer_strength < 0:
        raise ValueError(
            f"`regularizer_strength` must be >= 0, got {regularizer_strength!r}"
        )
    x_low, x_high = keras.Input(low_shape), keras.Input(high_shape)
    regularizer = (
        MultinomialEntropy(regularizer_strength) if regularizer_strength else None
    )
    features, _, _ = attention_sampling(
        attention_network(attention_filters),
        feature_network(patch_size, filters, high_shape[-1]),
        patch_size=tuple(patch_size),
        n_patches=n_patches,
        replace=replace,
        attention_regularizer=regularizer,
        seed=seed,
    )([x_low, x_high])
    y = layers.Dense(n_classes, activation="softmax", name=_CLASSIFIER)(features)
    return keras.Model([x_low, x_high], y, name="ats")


def full_image_cnn(high_shape, n_classes=10, filters=32):
    """The classical architecture: the feature network on the whole image.

    The same four convolutions as :func:`feature_network`, applied
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
    """
    high_shape = _image_shape("high_shape", high_shape)
    n_classes = _positive_int("n_classes", n_classes)
    filters = _positive_int("filters", filters)
    return _image_classifier(
        high_shape, _feature_convolutions(filters), n_classes, "full_cnn"
    )


def low_res_cnn(low_shape, n_classes=10, filters=32):
    """A CNN that sees only the low-resolution view.

    Four 3x3 ReLU convolutions (``same`` padding, the third with stride 2),
    global max pooling, ``L2Normalize`` and a ``Dense`` softmax.

    Args:
        low_shape: ``(h, w, C)`` of the low-resolution view.
        n_classes: int, the number of classes.
        filters: int, channels of every convolution.

    Returns:
        An uncompiled ``keras.Model`` ``x_low (B, h, w, C) -> probabilities
        (B, n_classes)``.
    """
    low_shape = _image_shape("low_shape", low_shape)
    n_classes = _positive_int("n_classes", n_classes)
    filters = _positive_int("filters", filters)
    convolutions = [
        layers.Conv2D(filters, 3, strides=strides, padding="same", activation="relu")
        for strides in (1, 1, 2, 1)
    ]
    return _image_classifier(low_shape, convolutions, n_classes, "low_cnn")


def _image_classifier(shape, convolutions, n_classes, name):
    """``convolutions`` on images of ``shape``, then global max pooling,
    ``L2Normalize`` and a ``Dense`` softmax: the baselines' common head."""
    return keras.Sequential(
        [
            keras.Input(shape),
            *convolutions,
            layers.GlobalMaxPooling2D(),
            L2Normalize(),
            layers.Dense(n_classes, activation="softmax", name=_CLASSIFIER),
        ],
        name=name,
    )


MODELS = {"ats": ("low", "high"), "full-cnn": ("high",), "low-cnn": ("low",)}
"""The model names of the experiment and the views each one reads."""


def _sample_patches_layer(model):
    found = [layer for layer in model.layers if isinstance(layer, SamplePatches)]
    if len(found) != 1:
        raise ValueError(
            "`model` must be an attention-sampling model built by ats_model "
            f"(with one SamplePatches layer), got {len(found)} such layers "
            f"in {model.name!r}"
        )
    return found[0]


def inspect(model, x_low, x_high, deterministic=False, seed=None):
    """Run an :func:`ats_model` step by step and return what it looked at.

    The steps are the model's own: its attention network, the sampling of
    ``ats.core.sample`` (or the top-``n_patches`` positions), the patch
    extraction of ``SamplePatches``, its feature network, the unbiased
    expectation and its classifier, so the probabilities are the model's
    prediction from exactly the returned patches.

    Args:
        model: a model built by :func:`ats_model`.
        x_low: ``(B, h, w, C)`` low-resolution views.
        x_high: ``(B, H, W, C)`` high-resolution views.
        deterministic: bool, take the most attended positions in decreasing
            order instead of sampling.
        seed: int or None, the seed of the sampling.

    Returns:
        A dict of numpy arrays: ``attention`` ``(B, h, w)``, ``corners``
        ``(B, N, 2)`` top-left ``(row, col)`` of the patches in ``x_high``
        (may be negative near the border), ``patches`` ``(B, N, ph, pw, C)``,
        ``sampled_attention`` ``(B, N)`` and ``probabilities``
        ``(B, n_classes)``.
    """
    sampler = _sample_patches_layer(model)
    x_low = ops.convert_to_tensor(np.asarray(x_low, dtype="float32"))
    x_high = ops.convert_to_tensor(np.asarray(x_high, dtype="float32"))
    attention = model.get_layer(_ATTENTION)(x_low)
    positions, sampled = sample(
        sampler.n_patches,
        attention,
        replace=sampler.replace,
        use_logits=sampler.use_logits,
        deterministic=deterministic,
        seed=keras.random.SeedGenerator(seed),
    )
    rf = sampler.receptive_field
    low = np.asarray(x_low.shape[1:-1], dtype="float32")
    patches, corners = FromTensors([x_low, x_high]).patches(
        positions,
        rf / 2,
        tuple(attention.shape[1:]),
        low - rf,
        sampler.patch_size,
        0,
        1,
    )
    batch, n = patches.shape[:2]
    features = model.get_layer(_FEATURE)(
        ops.reshape(patches, (batch * n, *patches.shape[2:]))
    )
    features = ops.reshape(features, (batch, n, -1))
    probabilities = model.get_layer(_CLASSIFIER)(
        expected(sampled, features, replace=sampler.replace)
    )
    return {
        name: ops.convert_to_numpy(value)
        for name, value in (
            ("attention", attention),
            ("corners", corners),
            ("patches", patches),
            ("sampled_attention", sampled),
            ("probabilities", probabilities),
        )
    }
