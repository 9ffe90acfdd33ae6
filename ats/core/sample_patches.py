"""The layer that samples positions from attention and extracts patches."""

import keras
from keras import ops

from ..data import FromTensors
from .sampling import _validate_n_samples, sample


def validate_patch_size(patch_size, ndim=None):
    """Return ``patch_size`` as a tuple of positive ints or raise.

    Args:
        patch_size: sequence of positive ints.
        ndim: the number of spatial dimensions it must have, if known.
    """
    try:
        size = tuple(patch_size)
    except TypeError:
        raise TypeError(
            "`patch_size` must be a tuple of positive ints (one per spatial "
            f"dimension), got {patch_size!r}"
        ) from None
    if not size or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size
    ):
        raise ValueError(
            "`patch_size` must be a tuple of positive ints (one per spatial "
            f"dimension), got {patch_size!r}"
        )
    if ndim is not None and len(size) != ndim:
        raise ValueError(
            f"`patch_size` must have one entry per spatial dimension of the "
            f"input ({ndim}), got {patch_size!r} with {len(size)}"
        )
    return size


def validate_receptive_field(receptive_field):
    """Return ``receptive_field`` as a non-negative int or raise."""
    if isinstance(receptive_field, bool) or not isinstance(receptive_field, int):
        raise TypeError(
            "`receptive_field` must be a non-negative int, got "
            f"{receptive_field!r} of type {type(receptive_field).__name__}"
        )
    if receptive_field < 0:
        raise ValueError(
            f"`receptive_field` must be a non-negative int, got {receptive_field}"
        )
    return receptive_field


@keras.saving.register_keras_serializable(package="ats")
class SamplePatches(keras.layers.Layer):
    """Sample positions from an attention map and extract high-res patches.

    The attention map (spatial shape ``S``) is computed on ``x_low`` (spatial
    shape ``L``) and covers it minus ``receptive_field`` pixels
    (``receptive_field / 2`` on each side): attention cell ``s`` is centred at
    low-res coordinate ``receptive_field / 2 + (s + 0.5) * (L -
    receptive_field) / S``, which is scaled by ``shape(x_high) /
    shape(x_low)``; the patch is centred there, its corner rounded. Pixels of
    a patch outside ``x_high`` are zeros. No gradient flows into ``x_high``;
    gradients flow into the attention through ``sampled_attention``.

    Args:
        n_patches: int, how many patches to sample per data point.
        patch_size: tuple of ints, the size of the patches in ``x_high``.
        receptive_field: int, the receptive field of the attention network
            (0 for ``padding="same"`` networks).
        replace: bool, sample with replacement or without (default).
        use_logits: bool, whether the attention holds logits instead of
            probabilities.
        deterministic: bool, take the ``n_patches`` most attended positions
            (in decreasing order) instead of sampling; for inference.
        seed: int or None, seeds the layer's ``keras.random.SeedGenerator``.

    Input:
        ``[x_low (B, *L, C), x_high (B, *H, C), attention (B, *S)]`` (channels
        first per ``keras.config.image_data_format()``).

    Returns:
        ``[patches, sampled_attention]``: ``(B, N, *patch_size, C)`` (or
        ``(B, N, C, *patch_size)``) patches of ``x_high``'s dtype and the
        ``(B, N)`` float32 probabilities of the sampled positions.

    Example:
        >>> x_low = keras.Input((100, 100, 1)); x_high = keras.Input((400, 400, 1))
        >>> attention = SampleSoftmax(squeeze_channels=True)(
        ...     keras.layers.Conv2D(1, 3, padding="same")(x_low))
        >>> patches, sampled = SamplePatches(10, (32, 32))(
        ...     [x_low, x_high, attention])
    """

    def __init__(
        self,
        n_patches,
        patch_size,
        receptive_field=0,
        replace=False,
        use_logits=False,
        deterministic=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _validate_n_samples(n_patches)
        self.n_patches = n_patches
        self.patch_size = validate_patch_size(patch_size)
        self.receptive_field = validate_receptive_field(receptive_field)
        self.replace = bool(replace)
        self.use_logits = bool(use_logits)
        self.deterministic = bool(deterministic)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Patches keep x_high's dtype (uint8 stays uint8) and the attention is
        # sampled in float32, whatever the dtype policy.
        self.autocast = False

    def _spatial(self, shape):
        if keras.config.image_data_format() == "channels_last":
            return tuple(shape[1:-1])
        return tuple(shape[2:])

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3:
            raise ValueError(
                "SamplePatches expects three inputs [x_low, x_high, "
                f"attention], got input shape {input_shape!r}"
            )
        shape_low, shape_high, shape_att = (tuple(s) for s in input_shape)
        if not 3 <= len(shape_low) <= 5:
            raise ValueError(
                "SamplePatches: `x_low` must have shape (B, *spatial, C) with "
                f"1 to 3 spatial dimensions, got {shape_low}"
            )
        ndim = len(shape_low) - 2
        if len(shape_high) != len(shape_low):
            raise ValueError(
                "SamplePatches: `x_high` must have the same rank as `x_low` "
                f"({len(shape_low)}, shape {shape_low}), got shape "
                f"{shape_high}"
            )
        if len(shape_att) == len(shape_low):
            raise ValueError(
                "SamplePatches: `attention` must have shape (B, *spatial) "
                f"without a channel axis, got {shape_att} for x_low "
                f"{shape_low}; squeeze the channel axis, e.g. with "
                "SampleSoftmax(squeeze_channels=True)"
            )
        if len(shape_att) != ndim + 1:
            raise ValueError(
                f"SamplePatches: `attention` must have shape (B, *spatial) "
                f"with the {ndim} spatial dimensions of `x_low` {shape_low}, "
                f"got {shape_att}"
            )
        validate_patch_size(self.patch_size, ndim)
        low, sample_space = self._spatial(shape_low), shape_att[1:]
        for axis, (l, s) in enumerate(zip(low, sample_space)):
            if l is not None and self.receptive_field >= l:
                raise ValueError(
                    f"SamplePatches: `receptive_field` ({self.receptive_field})"
                    f" must be smaller than `x_low`'s spatial size ({l} on "
                    f"axis {axis})"
                )
            if l is not None and s is not None and s > l:
                raise ValueError(
                    "SamplePatches: the spatial dimensions of `attention` "
                    f"{sample_space} must not exceed those of `x_low` {low}"
                )
        if not self.replace and None not in sample_space:
            n_positions = 1
            for s in sample_space:
                n_positions *= s
            if self.n_patches > n_positions:
                raise ValueError(
                    f"SamplePatches: without replacement `n_patches` "
                    f"({self.n_patches}) must be at most the number of "
                    f"attention positions ({n_positions} for an attention "
                    f"map of shape {sample_space}); use replace=True or "
                    "fewer patches"
                )
        self.built = True

    def call(self, inputs):
        x_low, x_high, attention = inputs
        sample_space = tuple(attention.shape[1:])
        positions, sampled_attention = sample(
            self.n_patches,
            attention,
            replace=self.replace,
            use_logits=self.use_logits,
            seed=self.seed_generator,
            deterministic=self.deterministic,
        )
        source = self._source(x_low, x_high)
        low = ops.cast(source.spatial_shape(0), "float32")
        patches, _ = source.patches(
            positions,
            self.receptive_field / 2,
            sample_space,
            low - self.receptive_field,
            self.patch_size,
            0,
            1,
        )
        return [patches, sampled_attention]

    def _source(self, x_low, x_high):
        """The ``MultiResolutionBatch`` the patches are read from (levels 0
        and 1: ``x_low`` and the second input)."""
        return FromTensors([x_low, x_high])

    def compute_output_shape(self, input_shape):
        _, shape_high, _ = input_shape
        if keras.config.image_data_format() == "channels_last":
            patch = (*self.patch_size, shape_high[-1])
        else:
            patch = (shape_high[1], *self.patch_size)
        batch = shape_high[0]
        return [(batch, self.n_patches, *patch), (batch, self.n_patches)]

    def compute_output_spec(self, inputs):
        x_low, x_high, attention = inputs
        patches_shape, sampled_shape = self.compute_output_shape(
            [x_low.shape, x_high.shape, attention.shape]
        )
        return [
            keras.KerasTensor(patches_shape, dtype=x_high.dtype),
            keras.KerasTensor(sampled_shape, dtype="float32"),
        ]

    def get_config(self):
        return {
            **super().get_config(),
            "n_patches": self.n_patches,
            "patch_size": self.patch_size,
            "receptive_field": self.receptive_field,
            "replace": self.replace,
            "use_logits": self.use_logits,
            "deterministic": self.deterministic,
            "seed": self.seed,
        }
