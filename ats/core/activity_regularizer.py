"""An identity layer that adds a regularizer of its input to the losses."""

import keras

from .. import checks

__all__ = ["ActivityRegularizer"]


@keras.saving.register_keras_serializable(package="ats")
class ActivityRegularizer(keras.layers.Layer):
    """Identity layer that adds ``regularizer(inputs)`` to the model losses.

    Unlike the ``activity_regularizer`` argument of Keras layers, the value
    is **not** divided by the batch size: the regularizer gets the whole
    batch and its (scalar) output is added as is with ``add_loss``. This is
    how the entropy regularizer of the attention distribution is attached
    to a model.

    Args:
        regularizer: A callable ``x -> scalar tensor``: a
            ``keras.regularizers.Regularizer`` (e.g.
            :func:`ats.utils.regularizers.multinomial_entropy`), a function,
            or anything ``keras.regularizers.get`` accepts (``"l2"``, a
            serialized config dict).
        **kwargs: Base layer keyword arguments.

    Serialization: Keras regularizers (built-in or registered) are saved
    with ``keras.regularizers.serialize``. Plain functions are saved by name
    and must be registered with
    ``@keras.saving.register_keras_serializable()`` or passed through
    ``custom_objects`` when loading; lambdas can only be loaded with
    ``safe_mode=False``. ``get_config`` raises ``TypeError`` for callables
    that cannot be serialized at all (e.g. ``functools.partial`` objects).

    Input shape:
        Arbitrary.

    Output shape:
        Same as the input.

    Returns:
        The input, unchanged (same dtype: the layer does not autocast, so a
        float32 attention distribution stays float32 under mixed precision).

    Example:
        >>> import numpy as np
        >>> from ats.core import ActivityRegularizer
        >>> from ats.utils.regularizers import multinomial_entropy
        >>> attention = np.full((2, 4, 4), 1 / 16, "float32")
        >>> layer = ActivityRegularizer(multinomial_entropy(0.01))
        >>> tuple(layer(attention).shape), len(layer.losses)
        ((2, 4, 4), 1)
    """

    def __init__(self, regularizer, **kwargs):
        # An identity: keep the input dtype (no float autocasting), so e.g. a
        # float32 attention distribution stays float32 under mixed precision.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        where, expected = type(self).__name__, "a regularizer (a callable)"
        if isinstance(regularizer, (str, dict)):
            try:
                regularizer = keras.regularizers.get(regularizer)
            except Exception as error:
                raise ValueError(
                    f"{where}: `regularizer` must be {expected}, got "
                    f"{regularizer!r} ({error})"
                ) from error
        if regularizer is None or not callable(regularizer):
            checks.fail("regularizer", expected, regularizer, where, TypeError)
        self.regularizer = regularizer
        self.supports_masking = True

    def call(self, inputs):
        self.add_loss(self.regularizer(inputs))
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype)

    def get_config(self):
        config = super().get_config()
        try:
            serialized = keras.regularizers.serialize(self.regularizer)
        except (TypeError, ValueError, AttributeError) as e:
            raise TypeError(
                f"{self.__class__.__name__} cannot serialize its argument "
                f"`regularizer`={self.regularizer!r}: expected a "
                "keras.regularizers.Regularizer (with get_config) or a "
                "plain function registered with "
                "@keras.saving.register_keras_serializable(). "
                f"Original error: {e}"
            ) from e
        config.update({"regularizer": serialized})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        regularizer = config.pop("regularizer")
        if isinstance(regularizer, dict):
            regularizer = keras.regularizers.deserialize(regularizer)
        return cls(regularizer=regularizer, **config)
