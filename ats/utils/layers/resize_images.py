"""Resizing a batch of images (e.g. to make the low-resolution view)."""

import keras
from keras import ops

from ... import checks
from .images import check_image_batch, image_op_supports_jit
from .precision import LOW_PRECISION_FLOATS

__all__ = ["ResizeImages"]


@keras.saving.register_keras_serializable(package="ats")
class ResizeImages(keras.layers.Layer):
    """Resize a batch of images to a fixed spatial size.

    A thin wrapper around ``keras.ops.image.resize`` (no antialiasing, as in
    the original attention-sampling code), typically used to create the low
    resolution view fed to the attention network. Low precision inputs are
    resized in float32 and cast back (some backends lack float16 bicubic
    kernels on CPU). On the TensorFlow backend ``mode="bicubic"`` sets
    ``supports_jit = False`` (TensorFlow's bicubic resize has no XLA kernel).

    Args:
        size: Pair of positive ints ``(height, width)``, the output size.
        mode: Interpolation, one of ``"bilinear"`` (default), ``"bicubic"``
            or ``"nearest"``.
        data_format: ``None``, ``"channels_last"`` or ``"channels_first"``.
            ``None`` means ``keras.config.image_data_format()``.
        **kwargs: Base layer keyword arguments.

    Input shape:
        4D tensor ``(batch, height, width, channels)`` for
        ``"channels_last"`` or ``(batch, channels, height, width)`` for
        ``"channels_first"``.

    Output shape:
        Same as the input with the spatial axes replaced by ``size``.

    Returns:
        The resized images.

    Example:
        >>> import numpy as np
        >>> from ats.utils.layers import ResizeImages
        >>> tuple(ResizeImages((32, 48))(np.zeros((2, 64, 96, 3))).shape)
        (2, 32, 48, 3)
    """

    _MODES = ("bilinear", "bicubic", "nearest")

    def __init__(self, size, mode="bilinear", data_format=None, **kwargs):
        super().__init__(**kwargs)
        where = type(self).__name__
        self.size = checks.int_tuple("size", size, length=2, where=where)
        self.mode = checks.choice("mode", mode, self._MODES, where=where)
        self.data_format = checks.data_format("data_format", data_format, where=where)
        if not image_op_supports_jit("resize", self.mode):
            self.supports_jit = False

    def build(self, input_shape):
        check_image_batch(self, input_shape)
        self.built = True

    def call(self, inputs):
        x = inputs
        low_precision = keras.backend.standardize_dtype(x.dtype) in LOW_PRECISION_FLOATS
        if low_precision:
            x = ops.cast(x, "float32")
        y = ops.image.resize(
            x,
            self.size,
            interpolation=self.mode,
            data_format=self.data_format,
        )
        return ops.cast(y, inputs.dtype) if low_precision else y

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if self.data_format == "channels_last":
            shape[1], shape[2] = self.size
        else:
            shape[2], shape[3] = self.size
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "size": list(self.size),
                "mode": self.mode,
                "data_format": self.data_format,
            }
        )
        return config
