"""Softmax over all the positions of each sample: the attention distribution."""

import keras
from keras import ops

from ... import checks
from .precision import LOW_PRECISION_FLOATS, at_least_float32

__all__ = ["SampleSoftmax"]


@keras.saving.register_keras_serializable(package="ats")
class SampleSoftmax(keras.layers.Layer):
    """Softmax over all the positions of each sample.

    Unlike ``keras.layers.Softmax``, which normalizes along one axis, this
    layer flattens every non-batch axis together, so the output of each
    sample is a single probability distribution over all its entries (e.g.
    an attention distribution over the pixels of an attention map):

    ``p = softmax(flatten(x))``, optionally smoothed towards the uniform
    distribution as ``p = (1 - smooth) * p + smooth / K`` where ``K`` is the
    number of entries per sample. The sum of the output over all non-batch
    axes is 1 for every sample.

    The softmax is numerically stable (the per-sample maximum is subtracted)
    and is always **computed and returned in float32** (float64 inputs stay
    float64): under the ``"mixed_float16"`` policy the layer defaults to the
    ``"float32"`` dtype policy, and float16 inputs are cast up, because
    attention probabilities over many positions underflow in float16.

    Args:
        squeeze_channels: Bool. If ``True`` the channel axis (last axis for
            ``"channels_last"``, axis 1 for ``"channels_first"``) must have
            size 1 and is removed from the output. Defaults to ``False``.
        smooth: Real number in ``[0, 1)``, the weight of the uniform
            distribution mixed into the softmax. Defaults to ``0``.
        data_format: ``None``, ``"channels_last"`` or ``"channels_first"``;
            only used to locate the channel axis when ``squeeze_channels``
            is set. ``None`` means ``keras.config.image_data_format()``.
        **kwargs: Base layer keyword arguments (``name``, ``dtype``, ...).

    Input shape:
        ``(batch, d1, ..., dn)`` with ``n >= 1`` (``n >= 2`` when
        ``squeeze_channels=True``).

    Output shape:
        Same as the input, without the channel axis if ``squeeze_channels``.

    Returns:
        A float32 (or float64) tensor whose entries of each sample are
        non-negative and sum to 1.

    Example:
        >>> import numpy as np
        >>> from keras import ops
        >>> from ats.utils.layers import SampleSoftmax
        >>> att = SampleSoftmax(squeeze_channels=True)(np.zeros((2, 4, 4, 1)))
        >>> tuple(att.shape)
        (2, 4, 4)
        >>> ops.convert_to_numpy(ops.sum(att, axis=(1, 2))).tolist()
        [1.0, 1.0]
    """

    def __init__(self, squeeze_channels=False, smooth=0, data_format=None, **kwargs):
        if kwargs.get("dtype") is None:
            policy = keras.config.dtype_policy()
            if policy.compute_dtype in LOW_PRECISION_FLOATS:
                kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        where = type(self).__name__
        self.squeeze_channels = checks.boolean(
            "squeeze_channels", squeeze_channels, where=where
        )
        self.smooth = checks.real(
            "smooth", smooth, 0, 1, exclusive_maximum=True, where=where
        )
        self.data_format = checks.data_format("data_format", data_format, where=where)
        self._channel_axis = -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        min_rank = 3 if self.squeeze_channels else 2
        if len(input_shape) < min_rank:
            raise ValueError(
                f"{self.__class__.__name__} expects inputs of rank >= "
                f"{min_rank} (batch axis plus at least "
                f"{min_rank - 1} more axes) when "
                f"squeeze_channels={self.squeeze_channels}. "
                f"Received input_shape={input_shape}"
            )
        if self.squeeze_channels:
            channels = input_shape[self._channel_axis]
            if channels is not None and channels != 1:
                raise ValueError(
                    f"{self.__class__.__name__} with squeeze_channels=True "
                    "requires the channel axis "
                    f"(axis {self._channel_axis}, data_format="
                    f"'{self.data_format}') to have size 1. "
                    f"Received input_shape={input_shape}"
                )
        self.built = True

    def call(self, inputs):
        x = at_least_float32(inputs)
        if self.squeeze_channels:
            x = ops.squeeze(x, axis=self._channel_axis)
        axes = tuple(range(1, len(x.shape)))

        x = x - ops.stop_gradient(ops.max(x, axis=axes, keepdims=True))
        e = ops.exp(x)
        p = e / ops.sum(e, axis=axes, keepdims=True)

        if self.smooth > 0:
            shape = ops.shape(x)
            k = 1
            for d in shape[1:]:
                k = k * d
            k = ops.cast(k, p.dtype)
            p = (1.0 - self.smooth) * p + self.smooth / k
        return p

    def compute_output_shape(self, input_shape):
        input_shape = list(input_shape)
        if self.squeeze_channels:
            del input_shape[self._channel_axis]
        return tuple(input_shape)

    def compute_output_spec(self, inputs):
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        dtype = "float64" if dtype == "float64" else "float32"
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "squeeze_channels": self.squeeze_channels,
                "smooth": self.smooth,
                "data_format": self.data_format,
            }
        )
        return config
