"""Local contrast of an image: where its structures are, before any training."""

import keras
from keras import ops

from ... import checks

__all__ = ["LocalContrast"]


@keras.saving.register_keras_serializable(package="ats")
class LocalContrast(keras.layers.Layer):
    """How much each pixel differs from its neighbourhood, scaled to [0, 1].

    The gray level (the mean of the channels) minus its mean over a
    ``(2 * radius + 1)`` square window, in absolute value, divided by its
    largest value in the image (plus ``epsilon``), times ``strength``. The
    image is reflected at its borders, so a border is not an edge.

    Added to an attention network's logits it is a *content prior*: at
    initialisation the attention samples structures (spots, edges) rather
    than flat background, which gives the feature network something to
    learn from in the first epoch; the network's own logits can outweigh it
    later. Flat images give zeros (no NaN).

    Args:
        radius: int >= 1, the half side of the window.
        strength: float >= 0, the value of the most contrasted pixel.
        epsilon: float > 0, added to the largest contrast before dividing.
        **kwargs: base layer keyword arguments.

    Input shape:
        ``(B, h, w, C)`` (or ``(B, C, h, w)`` with channels first), with
        ``h, w > radius``.

    Returns:
        ``(B, h, w, 1)`` (or ``(B, 1, h, w)``) float32.

    Example:
        >>> import numpy as np
        >>> from keras import ops
        >>> from ats.utils.layers import LocalContrast
        >>> image = np.zeros((1, 5, 5, 1), "float32")
        >>> image[0, 2, 2, 0] = 1.0                     # one bright spot
        >>> contrast = ops.convert_to_numpy(LocalContrast(1)(image))[0, ..., 0]
        >>> int(contrast.argmax()), round(float(contrast.max()), 3)
        (12, 1.0)
    """

    def __init__(self, radius=2, strength=1.0, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        where = type(self).__name__
        self.radius = checks.integer("radius", radius, minimum=1, where=where)
        self.strength = checks.real("strength", strength, 0, where=where)
        self.epsilon = checks.real(
            "epsilon", epsilon, 0, exclusive_minimum=True, where=where
        )

    def _channel_axis(self):
        return -1 if keras.config.image_data_format() == "channels_last" else 1

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"{type(self).__name__}: the input must be a batch of images "
                f"(B, h, w, C) or (B, C, h, w), got shape {tuple(input_shape)}"
            )
        self.built = True

    def call(self, images):
        gray = ops.mean(ops.cast(images, "float32"), axis=self._channel_axis())
        r = self.radius
        padded = ops.pad(gray, [[0, 0], [r, r], [r, r]], mode="reflect")
        window = 2 * r + 1
        mean = ops.average_pool(padded[..., None], window, strides=1, padding="valid")[
            ..., 0
        ]
        contrast = ops.abs(gray - mean)
        largest = ops.max(contrast, axis=(1, 2), keepdims=True)
        contrast = self.strength * contrast / (largest + self.epsilon)
        return ops.expand_dims(contrast, self._channel_axis())

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[self._channel_axis()] = 1
        return tuple(shape)

    def get_config(self):
        return {
            **super().get_config(),
            "radius": self.radius,
            "strength": self.strength,
            "epsilon": self.epsilon,
        }
