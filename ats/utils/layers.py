"""Keras layers used to build attention-sampling models.

Every layer here relies only on backend-agnostic Keras 3 APIs
(``keras.ops``, ``keras.random``, ``keras.layers``), so it runs unchanged on
the JAX, PyTorch and TensorFlow backends, and is registered for serialization
under the ``"ats"`` package (``model.save("m.keras")`` /
``keras.models.load_model`` work once :mod:`ats.utils` is imported).

Layers:

* :class:`SampleSoftmax`: softmax over all positions of a sample (the
  attention distribution), with optional uniform smoothing.
* :class:`L2Normalize`: unit L2 norm along an axis, safe at zero.
* :class:`ResizeImages`: image resizing (e.g. the low resolution view).
* :class:`TotalReshape`: reshape that includes the batch axis.
* :class:`ActivityRegularizer`: identity that adds ``regularizer(x)`` to the
  model's losses.
* :class:`ImageLinearTransform`: training-time random brightness/contrast.
* :class:`ImagePan`: training-time random translation.
"""

import numbers

import keras
from keras import ops

from ats.utils.regularizers import _at_least_float32, _check_real

__all__ = [
    "ActivityRegularizer",
    "ImageLinearTransform",
    "ImagePan",
    "L2Normalize",
    "ResizeImages",
    "SampleSoftmax",
    "TotalReshape",
]

_LOW_PRECISION_FLOATS = ("float16", "bfloat16")


# ---------------------------------------------------------------------------
# Argument validation helpers
# ---------------------------------------------------------------------------


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(
            f"Argument `{name}` must be a bool. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    return value


def _check_probability(name, value, *, closed_right=True):
    value = _check_real(name, value)
    upper_ok = value <= 1 if closed_right else value < 1
    if value < 0 or not upper_ok:
        interval = "[0, 1]" if closed_right else "[0, 1)"
        raise ValueError(
            f"Argument `{name}` must be in the interval {interval}. "
            f"Received: {name}={value!r}"
        )
    return value


def _check_range(name, value):
    """Validate a ``(low, high)`` pair of real numbers with low <= high."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(
            f"Argument `{name}` must be a pair (low, high) of real numbers. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    if len(value) != 2:
        raise ValueError(
            f"Argument `{name}` must be a pair (low, high) of real numbers. "
            f"Received {len(value)} values: {name}={value!r}"
        )
    low = _check_real(f"{name}[0]", value[0])
    high = _check_real(f"{name}[1]", value[1])
    if low > high:
        raise ValueError(
            f"Argument `{name}` must satisfy low <= high. Received: {name}={value!r}"
        )
    return (low, high)


def _check_seed(seed):
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
    ):
        raise TypeError(
            "Argument `seed` must be None or an int. "
            f"Received: seed={seed!r} of type {type(seed).__name__}"
        )
    return None if seed is None else int(seed)


def _standardize_data_format(data_format):
    if data_format is None:
        return keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "Argument `data_format` must be None, 'channels_last' or "
            f"'channels_first'. Received: data_format={data_format!r}"
        )
    return data_format


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"Argument `{name}` must be one of {list(choices)}. "
            f"Received: {name}={value!r}"
        )
    return value


def _to_compute_float(layer, x):
    """Convert ``x`` to a floating tensor of the layer's compute dtype."""
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype != layer.compute_dtype:
        x = ops.cast(x, layer.compute_dtype)
    return x


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------


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

    >>> att = SampleSoftmax(squeeze_channels=True)(np.zeros((2, 4, 4, 1)))
    >>> att.shape
    (2, 4, 4)
    >>> keras.ops.sum(att, axis=(1, 2))  # [1., 1.]
    """

    def __init__(self, squeeze_channels=False, smooth=0, data_format=None, **kwargs):
        if kwargs.get("dtype") is None:
            policy = keras.config.dtype_policy()
            if policy.compute_dtype in _LOW_PRECISION_FLOATS:
                kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.squeeze_channels = _check_bool("squeeze_channels", squeeze_channels)
        self.smooth = _check_probability("smooth", smooth, closed_right=False)
        self.data_format = _standardize_data_format(data_format)
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
        x = _at_least_float32(inputs)
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


@keras.saving.register_keras_serializable(package="ats")
class L2Normalize(keras.layers.Layer):
    """Normalize the input to unit L2 norm along ``axis``.

    Computes ``x / sqrt(max(sum(x ** 2, axis), epsilon))``. The ``max``
    keeps both the output and its gradient finite at ``x = 0`` (where the
    output is 0). The norm is computed in float32 for low precision inputs.

    Args:
        axis: Int or tuple of ints, the axis (axes) to normalize along.
            Defaults to ``-1``.
        epsilon: Strictly positive real number, lower bound of the squared
            norm. Defaults to ``1e-12``.
        **kwargs: Base layer keyword arguments.

    Input shape:
        Arbitrary.

    Output shape:
        Same as the input.

    Returns:
        The normalized tensor.

    Example:

    >>> y = L2Normalize()(np.array([[3.0, 4.0], [0.0, 0.0]]))
    >>> # [[0.6, 0.8], [0., 0.]]
    """

    def __init__(self, axis=-1, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            axes = tuple(axis)
        else:
            axes = (axis,)
        if not axes or any(
            isinstance(a, bool) or not isinstance(a, numbers.Integral) for a in axes
        ):
            raise TypeError(
                "Argument `axis` must be an int or a non-empty tuple of "
                f"ints. Received: axis={axis!r}"
            )
        self.axis = (
            int(axis) if isinstance(axis, numbers.Integral) else [int(a) for a in axes]
        )
        self.epsilon = _check_real("epsilon", epsilon, positive=True)
        self.supports_masking = True

    def _axes(self):
        return self.axis if isinstance(self.axis, int) else tuple(self.axis)

    def build(self, input_shape):
        rank = len(input_shape)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for a in axes:
            if not -rank <= a < rank:
                raise ValueError(
                    f"Argument `axis`={self.axis} is out of range for inputs "
                    f"of rank {rank} (input_shape={tuple(input_shape)})."
                )
        self.built = True

    def call(self, inputs):
        x = _to_compute_float(self, inputs)
        x32 = _at_least_float32(x)
        sq = ops.sum(ops.square(x32), axis=self._axes(), keepdims=True)
        eps = ops.cast(self.epsilon, x32.dtype)
        y = x32 / ops.sqrt(ops.maximum(sq, eps))
        return ops.cast(y, x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "epsilon": self.epsilon})
        return config


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

    >>> ResizeImages((32, 48))(np.zeros((2, 64, 96, 3))).shape
    (2, 32, 48, 3)
    """

    _MODES = ("bilinear", "bicubic", "nearest")

    def __init__(self, size, mode="bilinear", data_format=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(size, (str, bytes)) or not hasattr(size, "__len__"):
            raise TypeError(
                "Argument `size` must be a pair (height, width) of positive "
                f"ints. Received: size={size!r} of type {type(size).__name__}"
            )
        if len(size) != 2 or any(
            isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
            for s in size
        ):
            raise ValueError(
                "Argument `size` must be a pair (height, width) of positive "
                f"ints. Received: size={size!r}"
            )
        self.size = (int(size[0]), int(size[1]))
        self.mode = _check_choice("mode", mode, self._MODES)
        self.data_format = _standardize_data_format(data_format)
        if self.mode == "bicubic" and keras.backend.backend() == "tensorflow":
            # TensorFlow's ResizeBicubic has no XLA kernel: keep Keras from
            # jit-compiling models that contain this layer.
            self.supports_jit = False

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"{self.__class__.__name__} expects 4D inputs (a batch of "
                f"images). Received input_shape={tuple(input_shape)}"
            )
        self.built = True

    def call(self, inputs):
        x = inputs
        low_precision = (
            keras.backend.standardize_dtype(x.dtype) in _LOW_PRECISION_FLOATS
        )
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


@keras.saving.register_keras_serializable(package="ats")
class TotalReshape(keras.layers.Layer):
    """Reshape a tensor, batch axis included.

    ``keras.layers.Reshape`` keeps the batch axis untouched; this layer
    reshapes the whole tensor, which is needed to fold sampled patches into
    the batch and back, e.g. ``(B, N, h, w, C) -> (B * N, h, w, C)`` with
    ``shape=(-1, h, w, C)`` and ``(B * N, D) -> (B, N, D)`` with
    ``shape=(-1, N, D)``. At most one entry may be ``-1`` (inferred); it
    appears as ``None`` in :meth:`compute_output_shape`.

    Args:
        shape: Tuple/list of ints, the full target shape (batch axis
            included). Entries are positive or ``-1``.
        **kwargs: Base layer keyword arguments.

    Input shape:
        Arbitrary, with as many entries as ``shape`` implies.

    Output shape:
        ``shape`` (with ``-1`` as ``None``).

    Returns:
        The reshaped tensor, with the same dtype as the input (the layer
        does not autocast floats to its compute dtype).

    Example:

    >>> x = np.zeros((2, 5, 8, 8, 3))
    >>> TotalReshape((-1, 8, 8, 3))(x).shape
    (10, 8, 8, 3)
    """

    def __init__(self, shape, **kwargs):
        # A pure reshape: keep the input dtype (no float autocasting).
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__"):
            raise TypeError(
                "Argument `shape` must be a tuple or list of ints. "
                f"Received: shape={shape!r} of type {type(shape).__name__}"
            )
        if not len(shape) or any(
            isinstance(d, bool)
            or not isinstance(d, numbers.Integral)
            or not (d == -1 or d > 0)
            for d in shape
        ):
            raise ValueError(
                "Argument `shape` must be a non-empty tuple of positive ints "
                f"or -1. Received: shape={shape!r}"
            )
        if sum(1 for d in shape if d == -1) > 1:
            raise ValueError(
                "Argument `shape` can contain at most one -1. "
                f"Received: shape={shape!r}"
            )
        self.shape = tuple(int(d) for d in shape)
        self.supports_masking = False

    def call(self, inputs):
        return ops.reshape(inputs, self.shape)

    def compute_output_shape(self, input_shape):
        return tuple(None if d == -1 else d for d in self.shape)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(
            self.compute_output_shape(inputs.shape), dtype=inputs.dtype
        )

    def get_config(self):
        config = super().get_config()
        config.update({"shape": list(self.shape)})
        return config


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

    >>> from ats.utils.regularizers import multinomial_entropy
    >>> att = SampleSoftmax()(logits)
    >>> att = ActivityRegularizer(multinomial_entropy(0.01))(att)
    """

    def __init__(self, regularizer, **kwargs):
        # An identity: keep the input dtype (no float autocasting), so e.g. a
        # float32 attention distribution stays float32 under mixed precision.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if regularizer is None:
            raise TypeError(
                "Argument `regularizer` must be a callable (e.g. a "
                "keras.regularizers.Regularizer). Received: regularizer=None"
            )
        if isinstance(regularizer, (str, dict)):
            try:
                regularizer = keras.regularizers.get(regularizer)
            except Exception as e:
                raise ValueError(
                    "Argument `regularizer` could not be interpreted as a "
                    f"regularizer. Received: regularizer={regularizer!r} "
                    f"({e})"
                ) from e
        if not callable(regularizer):
            raise TypeError(
                "Argument `regularizer` must be a callable (e.g. a "
                "keras.regularizers.Regularizer). "
                f"Received: regularizer={regularizer!r} of type "
                f"{type(regularizer).__name__}"
            )
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


class _RandomImageLayer(keras.layers.Layer):
    """Shared plumbing of the training-only augmentation layers."""

    def __init__(self, p, seed, **kwargs):
        super().__init__(**kwargs)
        self.p = _check_probability("p", p)
        self.seed = _check_seed(seed)
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

    >>> aug = ImageLinearTransform(a=(0.9, 1.1), b=(-0.05, 0.05), p=0.5)
    >>> y = aug(images, training=True)
    """

    def __init__(self, a=(0.8, 1.2), b=(-0.1, 0.1), p=0.8, seed=None, **kwargs):
        super().__init__(p=p, seed=seed, **kwargs)
        self.a = _check_range("a", a)
        self.b = _check_range("b", b)

    def call(self, inputs, training=None):
        x = _to_compute_float(self, inputs)
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
        y = a * _at_least_float32(x) + b
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

    >>> pan = ImagePan(pixels=20, p=0.5, horizontally=True, vertically=True)
    >>> y = pan(images, training=True)
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
        self.pixels = _check_real("pixels", pixels)
        if self.pixels < 0:
            raise ValueError(
                f"Argument `pixels` must be non-negative. Received: pixels={pixels!r}"
            )
        self.horizontally = _check_bool("horizontally", horizontally)
        self.vertically = _check_bool("vertically", vertically)
        self.mode = _check_choice("mode", mode, self._MODES)
        self.data_format = _standardize_data_format(data_format)
        if keras.backend.backend() == "tensorflow":
            # TensorFlow's affine_transform (ImageProjectiveTransformV3) has
            # no XLA kernel: keep Keras from jit-compiling models with this
            # layer (as keras.layers.RandomTranslation does).
            self.supports_jit = False

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"{self.__class__.__name__} expects 4D inputs (a batch of "
                f"images). Received input_shape={tuple(input_shape)}"
            )
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
        x = _to_compute_float(self, inputs)
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
        low_precision = (
            keras.backend.standardize_dtype(x.dtype) in _LOW_PRECISION_FLOATS
        )
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
