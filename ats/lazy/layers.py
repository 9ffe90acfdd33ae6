"""Attention sampling over host sources: the model side of the lazy path."""

import keras
from keras import ops

from ..core import AttentionSampling, SamplePatches
from ..core.sampling import _exponential, _race_keys, unravel_positions
from .from_sources import FromSources
from .host_call import host_call_supports_jit

__all__ = ["SourcePatches", "LazyAttentionSampling", "lazy_attention_sampling"]


@keras.saving.register_keras_serializable(package="ats")
class SourcePatches(SamplePatches):
    """``SamplePatches`` whose high-resolution level stays on the host.

    Identical to ``SamplePatches`` (same arguments, same sampling with its
    own ``SeedGenerator``, same position-to-corner mapping) except that
    ``x_high`` is replaced by ``x_high_ref``, one ``[source id, *spatial
    shape]`` row per data point (``PatchSource.reference()``), and the
    sampled patches are read from those sources on the host, inside the
    model's step. So the positions a step reads are drawn from the attention
    that the same step computes and differentiates.

    ``x_high_ref`` may also hold wide rows ``[source id, *spatial shape,
    *own low shape]`` (``PatchSource.reference(low_shape)``, as
    ``BucketedSequence`` yields them): ``x_low`` then holds each image's low
    view zero-padded to the batch's shape, and positions map to each
    image's pixels with its own scale ``spatial shape / own low shape``
    (``FromSources``).

    Input:
        ``[x_low (B, *L, C), x_high_ref (B, 1 + ndim) or (B, 1 + 2 * ndim)
        int32, attention (B, *S)]``.

    Returns:
        ``[patches, sampled_attention]``: ``(B, N, *patch_size, C)`` (or
        ``(B, N, C, *patch_size)``) patches of ``x_low``'s dtype (the
        sources' values cast to it) and ``(B, N)`` float32 probabilities.

    Under TensorFlow the host read cannot be XLA-compiled, so the layer sets
    ``supports_jit=False`` there (``jit_compile="auto"`` then compiles with
    ``tf.function`` only); JAX compiles it with ``jit``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.supports_jit = host_call_supports_jit()

    _input_names = ("x_low", "x_high_ref", "attention")

    def _stand_in_high_shape(self, shape_low, batch=None):
        """A shape of ``x_high``'s rank for ``SamplePatches``' checks: the
        batch size of ``x_high_ref``, spatial sizes unknown (the sources
        check patches against their images, ``PatchSource.check_patch_size``)."""
        ndim = len(shape_low) - 2
        if keras.config.image_data_format() == "channels_last":
            return (batch, *(None,) * ndim, shape_low[-1])
        return (batch, shape_low[1], *(None,) * ndim)

    def _check_input_shapes(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3:
            raise ValueError(
                "SourcePatches expects three inputs [x_low, x_high_ref, "
                f"attention], got input shape {input_shape!r}"
            )
        shape_low, shape_ref, shape_att = (tuple(s) for s in input_shape)
        ndim = len(shape_low) - 2
        if len(shape_ref) != 2 or shape_ref[1] not in (None, ndim + 1, 2 * ndim + 1):
            raise ValueError(
                "SourcePatches: `x_high_ref` must have shape (B, 1 + ndim) = "
                f"(B, {ndim + 1}), or (B, 1 + 2 * ndim) = (B, {2 * ndim + 1}) "
                f"for wide rows, for x_low of shape {shape_low}, got "
                f"{shape_ref}"
            )
        stand_in = self._stand_in_high_shape(shape_low, shape_ref[0])
        super()._check_input_shapes([shape_low, stand_in, shape_att])

    def call(self, inputs):
        x_low, x_high_ref, attention = inputs
        if None not in tuple(attention.shape[1:]):
            return super().call(inputs)
        # Spatial extents known only when the step runs: TensorFlow relaxes
        # a step's signature to (B, None, None, C) once it has seen low views
        # of several shapes (BucketedSequence's buckets), while
        # ``ats.core.sample`` and ``SamplePatches.call`` read the static
        # shape. Same draws, on the flattened attention.
        extents = _extents(attention)
        positions, sampled_attention = _sample_flat(self, attention, extents)
        corners = self.patch_corners(x_low, x_high_ref, extents, positions)
        patches = self.patch_source(x_low, x_high_ref).read(corners, self.patch_size, 1)
        return [patches, sampled_attention]

    def patch_source(self, x_low, x_high_ref):
        return FromSources([x_low, ops.cast(x_high_ref, "int32")])

    def compute_output_shape(self, input_shape):
        shape_low, _, shape_att = input_shape
        stand_in = self._stand_in_high_shape(tuple(shape_low), shape_low[0])
        return super().compute_output_shape([shape_low, stand_in, shape_att])

    def _patch_dtype(self, x_low, x_high_ref):
        """Patches are read from the sources, which hold the dtype of
        ``x_low`` (the sequence serves both in one dtype)."""
        return x_low.dtype


def _extents(x):
    """The spatial extents of ``(B, *S)`` ``x``: ints where known statically,
    scalar tensors otherwise."""
    static, dynamic = tuple(x.shape), ops.shape(x)
    return tuple(
        dynamic[axis] if static[axis] is None else static[axis]
        for axis in range(1, len(static))
    )


def _sample_flat(layer, attention, extents):
    """``ats.core.sample`` with ``layer``'s settings on an attention whose
    spatial extents are scalar tensors (``extents``): the same exponential
    race (or top-k) over the flattened positions."""
    attention = ops.cast(attention, "float32")
    flat = ops.reshape(attention, (ops.shape(attention)[0], -1))
    probabilities = ops.softmax(flat, axis=-1) if layer.use_logits else flat
    keys = ops.stop_gradient(flat)
    n = layer.n_patches
    if layer.deterministic:
        indices = ops.top_k(keys, n, sorted=True)[1]
    elif layer.replace:
        shape = (ops.shape(flat)[0], n, ops.shape(flat)[1])
        noise = _exponential(shape, layer.seed_generator)
        indices = ops.argmax(
            _race_keys(keys[:, None, :], noise, layer.use_logits), axis=-1
        )
    else:
        noise = _exponential(ops.shape(flat), layer.seed_generator)
        indices = ops.top_k(_race_keys(keys, noise, layer.use_logits), n, sorted=True)[
            1
        ]
    indices = ops.cast(indices, "int32")
    sampled_attention = ops.take_along_axis(probabilities, indices, axis=1)
    extents = tuple(ops.cast(extent, "int32") for extent in extents)
    return unravel_positions(indices, extents), sampled_attention


class LazyAttentionSampling(AttentionSampling):
    """The callable returned by ``lazy_attention_sampling``.

    ``AttentionSampling`` with its ``SamplePatches`` replaced by a
    ``SourcePatches`` of the same arguments, so it is called on ``[x_low,
    x_high_ref]`` instead of ``[x_low, x_high]`` and is otherwise the same
    computation, part by part.
    """

    sample_patches_class = SourcePatches


def lazy_attention_sampling(
    attention,
    feature,
    patch_size=None,
    n_patches=10,
    replace=False,
    attention_regularizer=None,
    receptive_field=0,
    seed=None,
):
    """``attention_sampling`` for images that are never tensors.

    The attention network runs on ``x_low`` in the model; ``n_patches``
    positions are sampled from its attention in the same step; only the
    patches at those positions are read, on the host, from the
    ``PatchSource`` s that ``x_high_ref`` points to; the feature network,
    ``Expectation`` and the loss follow, with gradients to both networks.
    With the same seed and weights it draws the same positions, reads the
    same patches and computes the same features and gradients as
    ``attention_sampling`` on the materialized ``x_high``.

    The arguments are those of ``ats.core.attention_sampling``.

    Returns:
        A ``LazyAttentionSampling`` callable ``([x_low, x_high_ref]) ->
        [expected_features, attention, patches]``, where ``x_high_ref`` is
        ``(B, 1 + ndim)`` int32 (``PatchSource.reference()`` rows, as
        ``SourceSequence`` yields them). For images of different sizes it is
        called on ``[x_low, x_high_ref, support]`` as ``BucketedSequence``
        yields them: low views zero-padded to the batch's shape, wide
        ``(B, 1 + 2 * ndim)`` rows (each image's own scale) and ``(B, *L)``
        supports; the attention is restricted to each image's support
        (``ats.core.RestrictAttention``) before it is sampled, so no patch is
        centred outside an image or its mask, and an image's attention and
        patches do not depend on what it is batched with.

    Example:
        >>> import keras
        >>> import numpy as np
        >>> from ats.data import ArraySource
        >>> from ats.lazy import SourceSequence, lazy_attention_sampling
        >>> from ats.utils.layers import SampleSoftmax
        >>> attention_net = keras.Sequential([
        ...     keras.layers.Conv2D(1, 3, padding="same"),
        ...     SampleSoftmax(squeeze_channels=True)])
        >>> feature_net = keras.Sequential([
        ...     keras.Input((16, 16, 1)), keras.layers.GlobalAveragePooling2D()])
        >>> x_low = keras.Input((16, 16, 1))
        >>> x_high_ref = keras.Input((3,), dtype="int32")
        >>> features, attention_map, patches = lazy_attention_sampling(
        ...     attention_net, feature_net, patch_size=(16, 16),
        ...     n_patches=4)([x_low, x_high_ref])
        >>> model = keras.Model([x_low, x_high_ref],
        ...                     keras.layers.Dense(2)(features))
        >>> images = np.random.default_rng(0).random((4, 128, 128, 1), "float32")
        >>> sources = [ArraySource(x, low=x[::8, ::8]) for x in images]
        >>> model.predict(SourceSequence(sources, batch_size=2), verbose=0).shape
        (4, 2)

        Images of different sizes, batched by ``BucketedSequence``:

        >>> from ats.lazy import BucketedSequence
        >>> x_low = keras.Input((None, None, 1))
        >>> x_high_ref = keras.Input((5,), dtype="int32")
        >>> support = keras.Input((None, None))
        >>> features, _, _ = lazy_attention_sampling(
        ...     attention_net, feature_net, patch_size=(16, 16),
        ...     n_patches=4)([x_low, x_high_ref, support])
        >>> model = keras.Model([x_low, x_high_ref, support],
        ...                     keras.layers.Dense(2)(features))
        >>> sources = [ArraySource(x, low=x[::8, ::8]) for x in
        ...            (images[0], images[1, :96, :64], images[2, :64])]
        >>> batches = BucketedSequence(sources, batch_size=2)
        >>> model.predict(batches, verbose=0).shape
        (4, 2)
    """
    return LazyAttentionSampling(
        attention,
        feature,
        patch_size,
        n_patches,
        replace,
        attention_regularizer,
        receptive_field,
        seed,
    )
