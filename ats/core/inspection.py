"""One attention-sampling step run part by part, to see what it looked at."""

import keras
from keras import ops

from .expectation import expected
from .sample_patches import SamplePatches
from .sampling import sample
from .support import RestrictAttention


def inspect_step(
    sampler,
    attention,
    feature,
    head,
    x_low,
    x_high,
    deterministic=False,
    seed=None,
    support=None,
):
    """Run the parts of an attention-sampling model one after the other.

    The attention network (restricted to ``support`` if one is given, as
    ``attention_sampling(...)([x_low, x_high, support])`` restricts it), the
    sampling of ``ats.core.sample`` (or the most attended positions),
    the patch placement of ``SamplePatches.patch_corners``, the read through
    the sampler's own source (tensors in memory, or host sources for
    ``ats.lazy``), the feature network, the unbiased expectation and the
    head: the returned prediction is computed from exactly the returned
    patches.

    Args:
        sampler: the model's ``SamplePatches`` (or ``ats.lazy.SourcePatches``).
        attention: the attention network, ``x_low -> (B, *S)``.
        feature: the feature network, ``(B * N, *patch, C) -> (B * N, D)``.
        head: the layer on the expected features, e.g. the classifier.
        x_low: ``(B, *low, C)`` low-resolution views.
        x_high: ``(B, *high, C)`` high-resolution views, or what the
            sampler reads patches through (``ats.lazy``: ``(B, 1 + ndim)``
            source references).
        deterministic: bool, take the most attended positions in decreasing
            order instead of sampling.
        seed: int or None, the seed of the sampling.
        support: optional ``(B, *low)`` support of the low views (> 0.5:
            may be sampled); the attention is restricted to it by
            ``RestrictAttention(sampler.receptive_field)``. None: no
            restriction.

    Returns:
        A dict of numpy arrays: ``attention`` ``(B, *S)`` (restricted to
        ``support`` if given), ``corners``
        ``(B, N, ndim)`` top-left corners of the patches in ``x_high``'s
        pixels (negative near the border), ``patches`` ``(B, N, *patch, C)``,
        ``sampled_attention`` ``(B, N)`` and ``outputs`` (the head's).

    Example:
        >>> import keras
        >>> import numpy as np
        >>> from ats.core import SamplePatches
        >>> from ats.core.inspection import inspect_step
        >>> from ats.utils.layers import SampleSoftmax
        >>> attention = keras.Sequential([
        ...     keras.layers.Conv2D(1, 3, padding="same"),
        ...     SampleSoftmax(squeeze_channels=True)])
        >>> feature = keras.layers.GlobalAveragePooling2D()
        >>> seen = inspect_step(SamplePatches(3, (8, 8)), attention, feature,
        ...                     keras.layers.Dense(2), np.ones((1, 8, 8, 1)),
        ...                     np.ones((1, 32, 32, 1)), seed=0)
        >>> seen["patches"].shape, seen["outputs"].shape
        ((1, 3, 8, 8, 1), (1, 2))
    """
    if not isinstance(sampler, SamplePatches):
        raise TypeError(
            "inspect_step: `sampler` must be a SamplePatches layer, got "
            f"{type(sampler).__name__}"
        )
    x_low = ops.convert_to_tensor(x_low)
    x_high = ops.convert_to_tensor(x_high)
    attention_map = attention(x_low)
    if support is not None:
        attention_map = RestrictAttention(sampler.receptive_field)(
            [attention_map, ops.convert_to_tensor(support, "float32")]
        )
    positions, sampled = sample(
        sampler.n_patches,
        attention_map,
        replace=sampler.replace,
        use_logits=sampler.use_logits,
        deterministic=deterministic,
        seed=keras.random.SeedGenerator(seed),
    )
    corners = sampler.patch_corners(
        x_low, x_high, tuple(attention_map.shape[1:]), positions
    )
    patches = sampler.patch_source(x_low, x_high).read(corners, sampler.patch_size, 1)
    batch, n = patches.shape[:2]
    features = feature(ops.reshape(patches, (batch * n, *patches.shape[2:])))
    features = ops.reshape(features, (batch, n, -1))
    outputs = head(expected(sampled, features, replace=sampler.replace))
    return {
        "attention": ops.convert_to_numpy(attention_map),
        "corners": ops.convert_to_numpy(corners),
        "patches": ops.convert_to_numpy(patches),
        "sampled_attention": ops.convert_to_numpy(sampled),
        "outputs": ops.convert_to_numpy(outputs),
    }
