"""Attention sampling over host sources: the model side of the lazy path."""

import keras
from keras import ops

from ..core import AttentionSampling, SamplePatches
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

    Input:
        ``[x_low (B, *L, C), x_high_ref (B, 1 + ndim) int32, attention
        (B, *S)]``.

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
        if len(shape_ref) != 2 or shape_ref[1] not in (None, ndim + 1):
            raise ValueError(
                "SourcePatches: `x_high_ref` must have shape (B, 1 + ndim) = "
                f"(B, {ndim + 1}) for x_low of shape {shape_low}, got "
                f"{shape_ref}"
            )
        stand_in = self._stand_in_high_shape(shape_low, shape_ref[0])
        super()._check_input_shapes([shape_low, stand_in, shape_att])

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
        ``SourceSequence`` yields them).

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
