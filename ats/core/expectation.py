"""Unbiased estimators of the expected features and of their gradient.

``Phi = sum_k a_k f_k`` is estimated from ``N`` sampled positions. The value
and the gradient with respect to the attention ``a`` (so to its logits and to
the attention network) and to the features ``f`` are unbiased, for sampling
with and without replacement. The derivation and the tests that prove it are
in ``docs/estimators.md``; the gradients come from stop-gradient surrogates,
so every backend's own autodiff computes them.
"""

import keras
from keras import ops

from .. import checks


def expected(attention, features, replace=False, weights=None):
    """Estimate ``sum_k a_k f_k`` from features at sampled positions.

    With replacement the estimate is ``sum_i w_i f_i``; without replacement
    (positions in draw order, as returned by ``ats.core.sample``) it is
    ``sum_i w_i T_i`` with ``T_i = sum_{j<i} a_j f_j + (1 - S_i) f_i`` and
    ``S_i = sum_{j<i} a_j``. Once the whole mass has been drawn (peaked
    attention, or fewer positive positions than draws) ``T_i`` is exact and
    the later draws add no gradient: the result stays finite.

    Args:
        attention: ``(B, N)`` probabilities of the sampled positions.
        features: ``(B, N, *F)`` features of the sampled positions.
        replace: bool, whether the positions were sampled with replacement.
        weights: optional ``(N,)`` or ``(B, N)`` weights of the ``N`` terms,
            summing to 1; defaults to ``1 / N`` each.

    Returns:
        ``(B, *F)`` tensor of ``features``' dtype (computed in float32).

    Example:
        >>> import keras
        >>> from ats.core import expected, sample
        >>> attention = keras.ops.full((2, 8, 8), 1 / 64)
        >>> positions, sampled = sample(10, attention, seed=0)
        >>> patch_features = keras.ops.ones((2, 10, 32))
        >>> tuple(expected(sampled, patch_features).shape)
        (2, 32)
    """
    replace = checks.boolean("replace", replace, where="expected")
    dtype = ops.convert_to_tensor(features).dtype
    a = ops.cast(attention, "float32")
    f = ops.cast(features, "float32")
    if weights is None:
        weights = ops.ones_like(a) / ops.cast(ops.shape(a)[1], "float32")
    weights = ops.cast(weights, "float32")

    a_f = _expand_to(a, f)
    if replace:
        score = _relative_change(a)
        terms = f + ops.stop_gradient(f) * _expand_to(score, f)
    else:
        mass_before = ops.cumsum(a, axis=1) - a
        remaining = ops.maximum(1.0 - mass_before, 0.0)
        remaining_f = _expand_to(remaining, f)
        seen = ops.cumsum(a_f * f, axis=1) - a_f * f
        exact_part = seen + remaining_f * f
        # Score of the last draw only: d log a_q - d log(1 - S).
        score = _relative_change(a) - _relative_change(remaining)
        terms = exact_part + ops.stop_gradient(remaining_f * f) * _expand_to(score, f)
    weights = _expand_to(ops.broadcast_to(weights, ops.shape(a)), f)
    return ops.cast(ops.sum(weights * terms, axis=1), dtype)


def _relative_change(x):
    """Zero-valued surrogate whose gradient is ``dx / x`` (0 where x is 0)."""
    fixed = ops.stop_gradient(x)
    positive = fixed > 0
    safe = ops.where(positive, fixed, ops.ones_like(fixed))
    return ops.where(positive, (x - fixed) / safe, ops.zeros_like(x))


def _expand_to(x, target):
    """Append singleton axes to ``x`` (B, N) to match ``target``'s rank."""
    for _ in range(len(target.shape) - len(x.shape)):
        x = ops.expand_dims(x, -1)
    return x


@keras.saving.register_keras_serializable(package="ats")
class Expectation(keras.layers.Layer):
    """Average sampled features with unbiased value and gradients.

    For sampling with replacement the forward pass is the mean of the
    features; the layer also defines unbiased gradients with respect to the
    sampled attention, so the attention network trains through the sampling.
    Without replacement it combines the exactly known mass of the earlier
    draws with the later ones (see ``expected``).

    Args:
        replace: bool, whether the features were sampled with replacement.
            Must match ``SamplePatches(replace=...)``.

    Input:
        ``[patch_features (B, N, *F), sampled_attention (B, N)]``.

    Returns:
        ``(B, *F)`` expected features.

    Example:
        >>> import keras
        >>> from ats.core import Expectation
        >>> features = keras.Input((10, 32))
        >>> sampled = keras.Input((10,))
        >>> tuple(Expectation()([features, sampled]).shape)
        (None, 32)
    """

    def __init__(self, replace=False, **kwargs):
        super().__init__(**kwargs)
        self.replace = checks.boolean("replace", replace, where="Expectation")
        # Computed in float32 whatever the policy; see `expected`.
        self.autocast = False

    def build(self, input_shape):
        features_shape, attention_shape = _two_shapes(input_shape)
        if len(attention_shape) != 2:
            raise ValueError(
                "Expectation: `sampled_attention` must have shape (B, N), got "
                f"{tuple(attention_shape)}"
            )
        if len(features_shape) < 2:
            raise ValueError(
                "Expectation: `patch_features` must have shape (B, N, ...), "
                f"got {tuple(features_shape)}"
            )
        n_features, n_attention = features_shape[1], attention_shape[1]
        if None not in (n_features, n_attention) and n_features != n_attention:
            raise ValueError(
                "Expectation: `patch_features` and `sampled_attention` must "
                f"hold the same number of samples N, got {n_features} and "
                f"{n_attention}"
            )
        self.built = True

    def call(self, inputs):
        features, sampled_attention = inputs
        return expected(sampled_attention, features, replace=self.replace)

    def compute_output_shape(self, input_shape):
        features_shape, _ = _two_shapes(input_shape)
        return (features_shape[0], *features_shape[2:])

    def compute_output_spec(self, inputs):
        features, _ = inputs
        return keras.KerasTensor(
            self.compute_output_shape([features.shape, None]), dtype=features.dtype
        )

    def get_config(self):
        return {**super().get_config(), "replace": self.replace}


def _two_shapes(input_shape):
    if (
        not isinstance(input_shape, (list, tuple))
        or len(input_shape) != 2
        or not isinstance(input_shape[0], (list, tuple, type(None)))
    ):
        raise ValueError(
            "Expectation expects two inputs [patch_features, "
            f"sampled_attention], got input shape {input_shape!r}"
        )
    return input_shape
