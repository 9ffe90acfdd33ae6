"""Training-time random image augmentations."""

import warnings

import keras
from keras import ops

from ... import checks
from .images import check_image_batch, image_op_supports_jit
from .precision import LOW_PRECISION_FLOATS, at_least_float32, to_compute_float

__all__ = ["ImageLinearTransform", "ImagePan"]


class _RandomImageLayer(keras.layers.Layer):
    """Shared plumbing of the training-only augmentation layers."""

    def __init__(self, p, seed, **kwargs):
        super().__init__(**kwargs)
        where = type(self).__name__
        self.p = checks.real("p", p, 0, 1, where=where)
        self.seed = checks.seed("seed", seed, where=where)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.supports_masking = True

    def _batch_shape(self, x):
        return (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)

    def _apply_mask(self, shape):
        """Boolean tensor of ``shape``: True with probability ``p``."""
        u = keras.random.uniform(shape, seed=self.seed_generator)
        return u < self.p

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"p": self.p, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="ats")
class ImageLinearTransform(_RandomImageLayer):
    """Random per-image affine intensity transform (training only).

    During training, each image of the batch is, with probability ``p``,
    replaced by ``a * x + b`` with ``a ~ U(a[0], a[1])`` and
    ``b ~ U(b[0], b[1])`` drawn independently per image (a random
    contrast/brightness change); otherwise it is left unchanged. At
    inference (``training`` falsy) the layer is the identity.

    Randomness comes from a ``keras.random.SeedGenerator(seed)`` owned by
    the layer, so it works inside jitted/compiled training steps on every
    backend.

    Args:
        a: Pair ``(low, high)``, range of the multiplicative factor.
            Defaults to ``(0.8, 1.2)``.
        b: Pair ``(low, high)``, range of the additive offset. Defaults to
            ``(-0.1, 0.1)``.
        p: Real in ``[0, 1]``, probability of transforming each image.
            Defaults to ``0.8``.
        seed: ``None`` or int, seed of the layer's ``SeedGenerator``.
        **kwargs: Base layer keyword arguments.

    Input shape:
        ``(batch, ...)``, any rank >= 1.

    Output shape:
        Same as the input.

    Returns:
        The (possibly) transformed images, in the layer's compute dtype.

    Example:
        >>> import numpy as np
        >>> from ats.utils.layers import ImageLinearTransform
        >>> images = np.ones((4, 8, 8, 1), "float32")
        >>> aug = ImageLinearTransform(a=(0.9, 1.1), b=(-0.05, 0.05), p=0.5, seed=0)
        >>> tuple(aug(images, training=True).shape)
        (4, 8, 8, 1)
    """

    def __init__(self, a=(0.8, 1.2), b=(-0.1, 0.1), p=0.8, seed=None, **kwargs):
        super().__init__(p=p, seed=seed, **kwargs)
        where = type(self).__name__
        self.a = checks.real_pair("a", a, where=where)
        self.b = checks.real_pair("b", b, where=where)

    def call(self, inputs, training=None):
        x = to_compute_float(self, inputs)
        if not training or self.p == 0:
            return x
        shape = self._batch_shape(x)
        a = keras.random.uniform(
            shape,
            minval=self.a[0],
            maxval=self.a[1],
            seed=self.seed_generator,
        )
        b = keras.random.uniform(
            shape,
            minval=self.b[0],
            maxval=self.b[1],
            seed=self.seed_generator,
        )
        mask = self._apply_mask(shape)
        a = ops.where(mask, a, ops.ones_like(a))
        b = ops.where(mask, b, ops.zeros_like(b))
        y = a * at_least_float32(x) + b
        return ops.cast(y, x.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"a": list(self.a), "b": list(self.b)})
        return config


@keras.saving.register_keras_serializable(package="ats")
class ImagePan(_RandomImageLayer):
    """Random per-image translation (training only).

    During training, each image is, with probability ``p``, translated by
    ``t ~ U(-pixels, pixels)`` pixels along each enabled axis (horizontal =
    width, vertical = height), independently per image and axis. Uncovered
    regions are filled with zeros. With ``mode="nearest"`` the offsets are
    rounded to integers, so the content is shifted exactly; with
    ``mode="bilinear"`` real offsets are used and the image is
    interpolated. At inference (``training`` falsy) the layer is the
    identity.

    Implemented with ``keras.ops.image.affine_transform`` (constant fill);
    low precision inputs are transformed in float32 and cast back. On the
    TensorFlow backend the layer sets ``supports_jit = False`` because that
    op has no XLA kernel (Keras then trains the model without XLA).
    Randomness comes from a ``keras.random.SeedGenerator(seed)`` owned by
    the layer.

    Args:
        pixels: Non-negative real, the maximum translation in pixels.
            Defaults to ``100``.
        p: Real in ``[0, 1]``, probability of translating each image.
            Defaults to ``0.8``.
        horizontally: Bool, translate along the width axis. Defaults to
            ``True``.
        vertically: Bool, translate along the height axis. Defaults to
            ``False``.
        mode: ``"nearest"`` (default, integer offsets) or ``"bilinear"``.
            The original library's ``"NEAREST"`` and ``"BILINEAR"`` are
            accepted with a ``DeprecationWarning``.
        seed: ``None`` or int, seed of the layer's ``SeedGenerator``.
        data_format: ``None``, ``"channels_last"`` or ``"channels_first"``.
            ``None`` means ``keras.config.image_data_format()``.
        **kwargs: Base layer keyword arguments.

    Input shape:
        4D tensor ``(batch, height, width, channels)`` for
        ``"channels_last"`` or ``(batch, channels, height, width)`` for
        ``"channels_first"``.

    Output shape:
        Same as the input.

    Returns:
        The (possibly) translated images, in the layer's compute dtype.

    Example:
        >>> import numpy as np
        >>> from ats.utils.layers import ImagePan
        >>> images = np.ones((4, 32, 32, 1), "float32")
        >>> pan = ImagePan(pixels=8, p=0.5, horizontally=True, vertically=True,
        ...                seed=0)
        >>> tuple(pan(images, training=True).shape)
        (4, 32, 32, 1)
    """

    _MODES = ("nearest", "bilinear")

    def __init__(
        self,
        pixels=100,
        p=0.8,
        horizontally=True,
        vertically=False,
        mode="nearest",
        seed=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(p=p, seed=seed, **kwargs)
        where = type(self).__name__
        self.pixels = checks.real("pixels", pixels, 0, where=where)
        self.horizontally = checks.boolean("horizontally", horizontally, where=where)
        self.vertically = checks.boolean("vertically", vertically, where=where)
        if isinstance(mode, str) and mode.isupper() and mode.lower() in self._MODES:
            warnings.warn(
                f'{where}: mode="{mode}" is the original library\'s spelling; '
                f'write mode="{mode.lower()}"',
                DeprecationWarning,
                stacklevel=2,
            )
            mode = mode.lower()
        self.mode = checks.choice("mode", mode, self._MODES, where=where)
        self.data_format = checks.data_format("data_format", data_format, where=where)
        if not image_op_supports_jit("affine_transform", self.mode):
            self.supports_jit = False

    def build(self, input_shape):
        check_image_batch(self, input_shape)
        self.built = True

    def _offsets(self, batch, enabled, mask):
        if not enabled:
            return ops.zeros((batch,), "float32")
        t = keras.random.uniform(
            (batch,),
            minval=-self.pixels,
            maxval=self.pixels,
            seed=self.seed_generator,
        )
        if self.mode == "nearest":
            t = ops.round(t)
        return ops.where(mask, t, ops.zeros_like(t))

    def call(self, inputs, training=None):
        x = to_compute_float(self, inputs)
        enabled = self.horizontally or self.vertically
        if not training or not enabled or self.p == 0 or self.pixels == 0:
            return x
        batch = ops.shape(x)[0]
        mask = self._apply_mask((batch,))
        tx = self._offsets(batch, self.horizontally, mask)
        ty = self._offsets(batch, self.vertically, mask)
        ones = ops.ones_like(tx)
        zeros = ops.zeros_like(tx)
        # affine_transform maps each output point (x, y) to the input point
        # (x - tx, y - ty), i.e. it moves the content by (+tx, +ty).
        transform = ops.stack(
            [ones, zeros, -tx, zeros, ones, -ty, zeros, zeros], axis=1
        )
        low_precision = keras.backend.standardize_dtype(x.dtype) in LOW_PRECISION_FLOATS
        images = ops.cast(x, "float32") if low_precision else x
        y = ops.image.affine_transform(
            images,
            ops.cast(transform, images.dtype),
            interpolation=self.mode,
            fill_mode="constant",
            fill_value=0,
            data_format=self.data_format,
        )
        return ops.cast(y, x.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pixels": self.pixels,
                "horizontally": self.horizontally,
                "vertically": self.vertically,
                "mode": self.mode,
                "data_format": self.data_format,
            }
        )
        return config
