"""``attention_sampling``: the whole pipeline as one callable; and the
original library's ``ATSBuilder`` (deprecated), which builds the same."""

import warnings

import keras

from .. import checks
from .activity_regularizer import ActivityRegularizer
from .expectation import Expectation
from .from_tensors import FromTensors
from .sample_patches import SamplePatches
from .support import RestrictAttention
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
        ``([x_low, x_high]) -> [expected_features, attention, patches]``,
        also callable on ``[x_low, x_high, support]``: ``support`` ``(B,
        *L)`` marks the low-resolution pixels of each data point that may be
        sampled (> 0.5: e.g. 1 inside an image padded to the batch's shape
        and inside its foreground mask, 0 elsewhere); the attention is then
        restricted to the cells whose centre lies on the support
        (``ats.core.RestrictAttention`` with ``receptive_field``) before the
        regularizer and the sampling, and the returned attention map is the
        restricted one.

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
        self.restrict = RestrictAttention(receptive_field)
        self.expectation = Expectation(replace)
        # Nothing of its own to build: its parts build on their first call.
        self.built = True

    def __call__(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise ValueError(
                "attention_sampling(...) must be called on [x_low, x_high] or "
                "[x_low, x_high, support], got "
                + (
                    f"a list of {len(inputs)}"
                    if isinstance(inputs, (list, tuple))
                    else type(inputs).__name__
                )
            )
        x_low, x_high = inputs[:2]
        attention_map = self.attention(x_low)
        if len(inputs) == 3:
            attention_map = self.restrict([attention_map, inputs[2]])
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


class ATSOutput:
    """What ``ATSBuilder.get()`` returns (the original library's struct).

    Attributes:
        inputs: list, the batch's own inputs (``[]`` for ``FromTensors``:
            the tensors given to it are the model's inputs).
        outputs: ``(B, D)`` tensor, the expected features.
        targets: the batch's targets (``y`` of ``from_tensors``).
        attention: ``(B, *S)`` tensor, the attention map.
        patches: ``(B, N, *patch_size, C)`` tensor, the sampled patches.
    """

    def __init__(
        self, inputs=None, outputs=None, targets=None, attention=None, patches=None
    ):
        self.inputs = inputs
        self.outputs = outputs
        self.targets = targets
        self.attention = attention
        self.patches = patches

    def __iter__(self):
        return iter(
            (self.inputs, self.outputs, self.targets, self.attention, self.patches)
        )


class ATSBuilder:
    """The original library's builder of an attention-sampling graph
    (deprecated): ``attention_sampling`` builds the same model.

    Each setter returns the builder; ``get()`` calls ``attention_sampling``
    on the batch's levels 0 and 1 and returns an ``ATSOutput``. Creating one
    warns with a ``DeprecationWarning`` giving the modern form::

        features, attention, patches = attention_sampling(
            attention, feature, patch_size, n_patches, replace=False,
            receptive_field=0,
        )([x_low, x_high])

    Example:
        >>> import warnings
        >>> import keras
        >>> from ats.core.builder import ATSBuilder
        >>> from ats.utils.layers import SampleSoftmax
        >>> x_low, x_high = keras.Input((16, 16, 1)), keras.Input((64, 64, 1))
        >>> attention = keras.Sequential([
        ...     keras.layers.Conv2D(1, 3, padding="same"),
        ...     SampleSoftmax(squeeze_channels=True)])
        >>> feature = keras.Sequential([keras.layers.GlobalMaxPooling2D()])
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     result = (ATSBuilder().from_tensors([x_low, x_high], None)
        ...               .attention(attention).feature(feature)
        ...               .patch_size((8, 8)).n_patches(4)
        ...               .sample_without_replacement().get())
        >>> model = keras.Model([x_low, x_high], result.outputs)
        >>> tuple(result.outputs.shape), tuple(result.patches.shape)
        ((None, 1), (None, 4, 8, 8, 1))
    """

    def __init__(self):
        warnings.warn(
            "ATSBuilder is the original library's builder: write "
            "features, attention, patches = ats.core.attention_sampling("
            "attention, feature, patch_size, n_patches, replace=..., "
            "receptive_field=...)([x_low, x_high])",
            DeprecationWarning,
            stacklevel=2,
        )
        self._batch = None
        self._attention = None
        self._feature = None
        self._patch_size = None
        self._n_patches = None
        self._replace = False
        self._receptive_field = 0

    def from_batch(self, batch):
        """Read the levels from ``batch``, an ``ats.core.FromTensors``."""
        if not isinstance(batch, FromTensors):
            raise TypeError(
                "ATSBuilder.from_batch: `batch` must be an ats.core.FromTensors, "
                f"got {type(batch).__name__}; data that is not a tensor is read "
                "by ats.lazy.lazy_attention_sampling, and another in-graph "
                "source by a SamplePatches subclass whose patch_source returns "
                "it (AttentionSampling.sample_patches_class)"
            )
        self._batch = batch
        return self

    def from_tensors(self, xs, y=None):
        """Read the levels from the tensors ``xs`` (low resolution first)."""
        return self.from_batch(FromTensors(xs, y))

    def attention(self, attention):
        """Set the attention network (``x_low`` to ``(B, *S)``)."""
        self._attention = attention
        return self

    def attention_receptive_field(self, receptive_field):
        """Set the attention network's receptive field."""
        self._receptive_field = receptive_field
        return self

    def feature(self, feature):
        """Set the feature network (patches to ``(B * N, D)``)."""
        self._feature = feature
        return self

    def patch_size(self, patch_size):
        """Set the size of the patches read from the high resolution."""
        self._patch_size = patch_size
        return self

    def n_patches(self, n_patches):
        """Set the number of patches per data point."""
        self._n_patches = n_patches
        return self

    def sample_with(self, replacement):
        """Sample with replacement (``replacement=True``) or without."""
        self._replace = checks.boolean(
            "replacement", replacement, where="ATSBuilder.sample_with"
        )
        return self

    def sample_with_replacement(self):
        """Sample with replacement."""
        self._replace = True
        return self

    def sample_without_replacement(self):
        """Sample without replacement (the default)."""
        self._replace = False
        return self

    def get(self):
        """Build the graph on the batch's levels 0 and 1.

        Returns:
            An ``ATSOutput``.
        """
        missing = [
            setter
            for setter, value in (
                ("from_tensors", self._batch),
                ("attention", self._attention),
                ("feature", self._feature),
                ("patch_size", self._patch_size),
                ("n_patches", self._n_patches),
            )
            if value is None
        ]
        if missing:
            raise ValueError(
                "ATSBuilder.get: call "
                + ", ".join(f"`.{setter}(...)`" for setter in missing)
                + " first"
            )
        features, attention, patches = attention_sampling(
            self._attention,
            self._feature,
            self._patch_size,
            self._n_patches,
            self._replace,
            receptive_field=self._receptive_field,
        )([self._batch.data(0), self._batch.data(1)])
        return ATSOutput(
            inputs=[],
            outputs=features,
            targets=self._batch.targets(),
            attention=attention,
            patches=patches,
        )
