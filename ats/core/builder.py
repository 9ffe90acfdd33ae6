"""``attention_sampling``: the whole pipeline as one callable."""

import keras

from .. import checks
from .activity_regularizer import ActivityRegularizer
from .expectation import Expectation
from .sample_patches import SamplePatches
from .total_reshape import TotalReshape


def attention_sampling(
    attention,
    feature,
    patch_size=None,
    n_patches=10,
    replace=False,
    attention_regularizer=None,
    receptive_field=0,
    seed=None,
):
    """Combine an attention and a feature network with attention sampling.

    The attention network runs on the low-resolution view; ``n_patches``
    positions are sampled from its attention; patches of ``patch_size`` are
    extracted there from the high-resolution view; the feature network runs
    on each patch; ``Expectation`` averages the patch features with unbiased
    value and gradients.

    Args:
        attention: Keras layer, model or callable taking ``x_low`` to an
            attention distribution ``(B, *S)`` (no channel axis), e.g. ending
            in ``SampleSoftmax(squeeze_channels=True)``.
        feature: Keras layer, model or callable taking a batch of patches
            ``(B * N, *patch_size, C)`` to feature vectors ``(B * N, D)``.
        patch_size: tuple of ints; if None it is read from the input shape of
            ``feature``, which must then be a Keras model with a known input
            shape.
        n_patches: int, the number of patches per data point.
        replace: bool, sample with replacement or without (default).
        attention_regularizer: optional callable on the attention map whose
            value is added to the loss (``ActivityRegularizer``), e.g.
            ``ats.utils.regularizers.MultinomialEntropy(1e-4)``.
        receptive_field: int, the attention network's receptive field (0 for
            ``padding="same"`` networks).
        seed: int or None, the seed of the sampling.

    Returns:
        An ``AttentionSampling`` callable
        ``([x_low, x_high]) -> [expected_features, attention, patches]``.

    Example:
        >>> import keras
        >>> from ats.core import attention_sampling
        >>> from ats.utils.layers import SampleSoftmax
        >>> attention_net = keras.Sequential([
        ...     keras.layers.Conv2D(1, 3, padding="same"),
        ...     SampleSoftmax(squeeze_channels=True)])
        >>> feature_net = keras.Sequential([
        ...     keras.Input((50, 50, 1)), keras.layers.GlobalAveragePooling2D()])
        >>> x_low = keras.Input((64, 64, 1))
        >>> x_high = keras.Input((256, 256, 1))
        >>> features, attention_map, patches = attention_sampling(
        ...     attention_net, feature_net, patch_size=(50, 50),
        ...     n_patches=10)([x_low, x_high])
        >>> y = keras.layers.Dense(10, activation="softmax")(features)
        >>> tuple(features.shape), tuple(patches.shape)
        ((None, 1), (None, 10, 50, 50, 1))
    """
    return AttentionSampling(
        attention,
        feature,
        patch_size,
        n_patches,
        replace,
        attention_regularizer,
        receptive_field,
        seed,
    )


class AttentionSampling(keras.layers.Layer):
    """The callable returned by ``attention_sampling``.

    Calling it composes its parts (attention, ``SamplePatches``, feature,
    ``Expectation``) call by call, so a Functional model built with it holds
    each part as a layer of its own and serializes like any other model.
    It is a ``Layer`` so that a subclassed model that stores it as an
    attribute tracks its weights and its sampling state.

    Attributes:
        sample_patches_class: the layer that samples and reads the patches,
            built with ``(n_patches, patch_size, receptive_field, replace,
            seed=seed)``; ``ats.lazy`` substitutes one that reads from host
            sources.
    """

    sample_patches_class = SamplePatches

    def __init__(
        self,
        attention,
        feature,
        patch_size=None,
        n_patches=10,
        replace=False,
        attention_regularizer=None,
        receptive_field=0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("attention", attention), ("feature", feature)):
            if not callable(value):
                raise TypeError(
                    f"attention_sampling: `{name}` must be a Keras layer, "
                    f"model or callable, got {type(value).__name__}"
                )
        if patch_size is None:
            patch_size = _infer_patch_size(feature)
        where = "attention_sampling"
        checks.integer("receptive_field", receptive_field, minimum=0, where=where)
        self.attention = attention
        self.feature = feature
        self.patch_size = checks.int_tuple("patch_size", patch_size, where=where)
        self.n_patches = n_patches
        self.regularizer = (
            None
            if attention_regularizer is None
            else ActivityRegularizer(attention_regularizer)
        )
        self.sample_patches = self.sample_patches_class(
            n_patches, self.patch_size, receptive_field, replace, seed=seed
        )
        self.expectation = Expectation(replace)
        # Nothing of its own to build: its parts build on their first call.
        self.built = True

    def __call__(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                "attention_sampling(...) must be called on [x_low, x_high], "
                f"got {type(inputs).__name__}"
            )
        x_low, x_high = inputs
        attention_map = self.attention(x_low)
        if self.regularizer is not None:
            attention_map = self.regularizer(attention_map)
        patches, sampled_attention = self.sample_patches([x_low, x_high, attention_map])

        patch_shape = tuple(patches.shape[2:])
        flat_patches = TotalReshape((-1, *patch_shape))(patches)
        patch_features = self.feature(flat_patches)
        feature_shape = tuple(patch_features.shape[1:])
        if None in feature_shape:
            raise ValueError(
                "attention_sampling: the feature network must return features "
                f"of a known shape, got {feature_shape}"
            )
        patch_features = TotalReshape((-1, self.n_patches, *feature_shape))(
            patch_features
        )
        features = self.expectation([patch_features, sampled_attention])
        return [features, attention_map, patches]

    def call(self, inputs):
        return self(inputs)


def _infer_patch_size(feature):
    """The spatial input shape of a Keras model or a layer called once."""
    inputs = getattr(feature, "inputs", None)
    if not inputs and isinstance(feature, keras.layers.Layer):
        try:
            inputs = [feature.input]
        except (AttributeError, ValueError):
            inputs = None
    if not inputs or len(inputs) != 1:
        raise ValueError(
            "attention_sampling: `patch_size=None` needs `feature` to be a "
            "Keras model with a single input of known shape (e.g. built from "
            f"keras.Input), got {type(feature).__name__}; pass `patch_size` "
            "explicitly"
        )
    shape = tuple(inputs[0].shape[1:])
    spatial = (
        shape[:-1] if keras.config.image_data_format() == "channels_last" else shape[1:]
    )
    if not spatial or None in spatial:
        raise ValueError(
            "attention_sampling: cannot infer `patch_size` from the feature "
            f"network's input shape {shape}: its spatial dimensions must be "
            "known; pass `patch_size` explicitly"
        )
    return spatial
