"""Regularizers for attention distributions.

The attention network of an attention-sampling model outputs a multinomial
distribution over the positions of a (low resolution view of the) input. Left
alone, this distribution tends to collapse on very few positions early in
training, which starves the sampled patches of diversity. The entropy
regularizer below counteracts this: adding it to the loss and minimizing
pushes the attention towards higher entropy (a more spread out distribution).

All computations are performed in (at least) float32, so a float16 attention
map produced under the ``"mixed_float16"`` policy still yields a finite
penalty.
"""

import keras
from keras import ops

from .. import checks
from .layers.precision import at_least_float32

__all__ = ["MultinomialEntropy", "multinomial_entropy"]


@keras.saving.register_keras_serializable(package="ats")
class MultinomialEntropy(keras.regularizers.Regularizer):
    """Negative-entropy penalty for a batch of multinomial distributions.

    For an input ``x`` holding one probability distribution per sample
    (all non-batch entries of a sample sum to 1) it returns

    ``strength * sum(x * log(x + eps)) / B``

    where the sum runs over every entry of ``x`` and ``B`` is the batch size,
    i.e. ``-strength`` times the mean entropy of the distributions. Minimizing
    this loss with a positive ``strength`` therefore **raises** the entropy of
    the distributions (spreads the attention out); a negative ``strength``
    lowers it.

    The computation is carried out in float32 (float64 inputs stay float64),
    so float16 attention maps give a finite, accurate value.

    Args:
        strength: Real number, the weight of the penalty. Defaults to ``1``.
        eps: Strictly positive real number added inside the logarithm to
            keep it finite for zero probabilities. Defaults to ``1e-6``.

    Returns:
        Calling the regularizer on a tensor of shape ``(B, ...)`` returns a
        scalar tensor.

    Example:
        >>> import keras
        >>> from ats.utils.regularizers import MultinomialEntropy
        >>> reg = MultinomialEntropy(strength=0.01)
        >>> att = keras.ops.softmax(keras.ops.zeros((2, 16)))  # uniform
        >>> round(float(reg(att)), 4)  # -0.01 * log(16)
        -0.0277
        >>> layer = keras.layers.Dense(16, activation="softmax",
        ...                            activity_regularizer=reg)
    """

    def __init__(self, strength=1, eps=1e-6):
        where = type(self).__name__
        self.strength = checks.real("strength", strength, where=where)
        self.eps = checks.real("eps", eps, 0, exclusive_minimum=True, where=where)

    def __call__(self, x):
        x = at_least_float32(x)
        batch_size = ops.cast(ops.shape(x)[0], x.dtype)
        neg_entropy = ops.sum(x * ops.log(x + ops.cast(self.eps, x.dtype)))
        return ops.cast(self.strength, x.dtype) * neg_entropy / batch_size

    def get_config(self):
        return {"strength": self.strength, "eps": self.eps}

    def __repr__(self):
        return f"{self.__class__.__name__}(strength={self.strength}, eps={self.eps})"


def multinomial_entropy(strength=1, eps=1e-6):
    """Create a negative-entropy regularizer for multinomial distributions.

    The returned callable maps a tensor ``x`` of shape ``(B, ...)``, holding
    one probability distribution per sample, to the scalar

    ``strength * sum(x * log(x + eps)) / B``

    (sum over every entry, ``B`` the batch size). Minimizing it with a
    positive ``strength`` raises the entropy of the distributions.

    The callable is a :class:`MultinomialEntropy` instance, so it can be used
    wherever Keras expects a regularizer (e.g. ``activity_regularizer=`` or
    :class:`ats.utils.layers.ActivityRegularizer`) and it survives model
    saving and loading.

    Args:
        strength: Real number, the weight of the penalty. Defaults to ``1``.
        eps: Strictly positive real number added inside the logarithm.
            Defaults to ``1e-6``.

    Returns:
        A :class:`MultinomialEntropy` regularizer (a callable
        ``x -> scalar tensor``).

    Example:
        >>> import keras
        >>> from ats.utils.regularizers import multinomial_entropy
        >>> entropy_reg = multinomial_entropy(0.01)
        >>> att = keras.ops.softmax(keras.ops.zeros((2, 16)))
        >>> round(float(entropy_reg(att)), 4)
        -0.0277
    """
    return MultinomialEntropy(strength=strength, eps=eps)
