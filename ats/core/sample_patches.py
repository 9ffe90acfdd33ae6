"""The layer that samples positions from attention and extracts patches."""

import keras
from keras import ops

from .. import checks
from .from_tensors import FromTensors
from .sampling import sample

# The key of the seed state among the layer's saved variables.
_SEED_STATE = "seed_generator_state"


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

    Raises:
        ValueError: inputs of different batch sizes (naming both), an
            ``x_high`` smaller than ``x_low`` or than ``patch_size`` on a
            spatial axis, and the other mismatches of shapes. They are
            checked on the sizes known without running anything: when the
            layer is built (on symbolic inputs, e.g. ``keras.Input``, whose
            batch size is usually unknown) and again at every call, eagerly
            and while a compiled function is traced (JAX's ``jit`` and
            PyTorch know every size then). Only a size that is still
            symbolic while tracing goes unchecked: in a TensorFlow graph
            traced for any batch size, inputs of different batch sizes fail
            when the graph runs, with TensorFlow's ``InvalidArgumentError``
            (Keras's ``fit``/``predict`` refuse inputs of different lengths
            before that), and an unknown spatial size is not compared.

    Example:
        >>> import keras
        >>> from ats.core import SamplePatches
        >>> from ats.utils.layers import SampleSoftmax
        >>> x_low = keras.Input((100, 100, 1))
        >>> x_high = keras.Input((400, 400, 1))
        >>> attention = SampleSoftmax(squeeze_channels=True)(
        ...     keras.layers.Conv2D(1, 3, padding="same")(x_low))
        >>> patches, sampled = SamplePatches(10, (32, 32))(
        ...     [x_low, x_high, attention])
        >>> tuple(patches.shape), tuple(sampled.shape)
        ((None, 10, 32, 32, 1), (None, 10))
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
        where = type(self).__name__
        self.n_patches = checks.integer("n_patches", n_patches, minimum=1, where=where)
        self.patch_size = checks.int_tuple("patch_size", patch_size, where=where)
        self.receptive_field = checks.integer(
            "receptive_field", receptive_field, minimum=0, where=where
        )
        self.replace = checks.boolean("replace", replace, where=where)
        self.use_logits = checks.boolean("use_logits", use_logits, where=where)
        self.deterministic = checks.boolean("deterministic", deterministic, where=where)
        self.seed = checks.seed("seed", seed, where=where)
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Patches keep x_high's dtype (uint8 stays uint8) and the attention is
        # sampled in float32, whatever the dtype policy.
        self.autocast = False

    # The inputs' names in error messages.
    _input_names = ("x_low", "x_high", "attention")

    def _spatial(self, shape):
        if keras.config.image_data_format() == "channels_last":
            return tuple(shape[1:-1])
        return tuple(shape[2:])

    def build(self, input_shape):
        self._check_input_shapes(input_shape)
        self.built = True

    def __call__(self, inputs, *args, **kwargs):
        # build() checks the shapes of the first call only: later calls are
        # checked here, before Keras runs `call` (eagerly, or while tracing
        # a compiled function, where the shapes known statically are checked).
        if self.built:
            shapes = _static_shapes(inputs)
            if shapes is not None:
                self._check_input_shapes(shapes)
        return super().__call__(inputs, *args, **kwargs)

    def _check_input_shapes(self, input_shape):
        """Refuse inputs that cannot be sampled from, on the sizes known.

        Args:
            input_shape: the shapes of ``[x_low, x_high, attention]``, with
                None for the sizes that are not known (symbolic).
        """
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
        checks.int_tuple(
            "patch_size", self.patch_size, length=ndim, where=type(self).__name__
        )
        _check_batch_sizes(
            dict(zip(self._input_names, (shape_low, shape_high, shape_att))),
            where=type(self).__name__,
        )
        low, sample_space = self._spatial(shape_low), shape_att[1:]
        for axis, (size, s) in enumerate(zip(low, sample_space)):
            if size is not None and self.receptive_field >= size:
                raise ValueError(
                    f"SamplePatches: `receptive_field` ({self.receptive_field})"
                    f" must be smaller than `x_low`'s spatial size ({size} on "
                    f"axis {axis})"
                )
            if size is not None and s is not None and s > size:
                raise ValueError(
                    "SamplePatches: the spatial dimensions of `attention` "
                    f"{sample_space} must not exceed those of `x_low` {low}"
                )
        self._check_high_resolution(low, self._spatial(shape_high))
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

    def _check_high_resolution(self, low, high):
        """Refuse an ``x_high`` smaller than ``x_low`` or than a patch, on
        the axes whose sizes are known.

        Args:
            low, high: the spatial shapes of ``x_low`` and ``x_high``.
        """
        where = type(self).__name__
        if any(h is not None and p > h for p, h in zip(self.patch_size, high)):
            checks.fail(
                "patch_size",
                f"at most the spatial shape of `x_high` {high} on every axis",
                self.patch_size,
                where,
            )
        if any(lo is not None and h is not None and h < lo for lo, h in zip(low, high)):
            raise ValueError(
                f"{where}: `x_high` must be at least as large as `x_low` "
                f"{low} on every spatial axis (it is the high-resolution "
                f"view), got spatial shape {high}"
            )

    def call(self, inputs):
        x_low, x_high, attention = inputs
        positions, sampled_attention = sample(
            self.n_patches,
            attention,
            replace=self.replace,
            use_logits=self.use_logits,
            seed=self.seed_generator,
            deterministic=self.deterministic,
        )
        corners = self.patch_corners(x_low, x_high, attention.shape[1:], positions)
        patches = self.patch_source(x_low, x_high).read(corners, self.patch_size, 1)
        return [patches, sampled_attention]

    def patch_corners(self, x_low, x_high, attention_shape, positions):
        """The top-left corners in ``x_high`` of the patches at ``positions``.

        The mapping ``call`` reads patches with (see the class docstring):
        attention cell ``s`` is centred at low-resolution coordinate
        ``receptive_field / 2 + (s + 0.5) * (L - receptive_field) / S``,
        scaled by ``shape(x_high) / shape(x_low)``, and the patch's corner
        is that centre minus ``patch_size / 2``, rounded half to even.
        Corners may be negative or beyond ``x_high`` near its border (the
        patch's pixels outside ``x_high`` are zeros).

        Args:
            x_low: ``(B, *L, C)`` (or ``(B, C, *L)``) tensor.
            x_high: ``(B, *H, C)`` (or ``(B, C, *H)``) tensor, the second
                input of the layer.
            attention_shape: tuple, the spatial shape ``S`` of the attention
                map (``attention.shape[1:]``).
            positions: ``(B, N, ndim)`` int cells of the attention map, as
                ``ats.core.sample`` returns them.

        Returns:
            ``(B, N, ndim)`` int32 top-left corners in ``x_high`` pixels.

        Example:
            >>> import numpy as np
            >>> from keras import ops
            >>> from ats.core import SamplePatches
            >>> layer = SamplePatches(1, (8, 8))
            >>> x_low, x_high = np.zeros((1, 10, 10, 1)), np.zeros((1, 40, 40, 1))
            >>> corners = layer.patch_corners(x_low, x_high, (10, 10), [[[0, 0]]])
            >>> ops.convert_to_numpy(corners).tolist()
            [[[-2, -2]]]
        """
        source = self.patch_source(x_low, x_high)
        low = ops.cast(source.spatial_shape(0), "float32")
        return source.corners(
            positions,
            self.receptive_field / 2,
            tuple(attention_shape),
            low - self.receptive_field,
            self.patch_size,
            0,
            1,
        )

    def patch_source(self, x_low, x_high):
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
            keras.KerasTensor(patches_shape, dtype=self._patch_dtype(x_low, x_high)),
            keras.KerasTensor(sampled_shape, dtype="float32"),
        ]

    def _patch_dtype(self, x_low, x_high):
        """The dtype of the patches: that of the second input, which they
        are copied from."""
        return x_high.dtype

    def save_own_variables(self, store):
        """Save the layer's variables and its seed state (the state of
        ``seed_generator``), so that ``keras.models.load_model`` gives a
        layer that draws what this one would draw next."""
        super().save_own_variables(store)
        store[_SEED_STATE] = self.seed_generator.state

    def load_own_variables(self, store):
        """Load what ``save_own_variables`` saved. A model saved before the
        seed state was saved loads too, its seed state then being the one
        of the ``seed`` argument."""
        # keys(): the H5 store has no __iter__.
        own = {key: store[key] for key in store.keys() if key != _SEED_STATE}  # noqa: SIM118
        super().load_own_variables(own)
        if _SEED_STATE in store:
            self.seed_generator.state.assign(store[_SEED_STATE])

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


def _static_shapes(inputs):
    """The shapes of ``inputs`` (a list of three tensors or arrays) as far
    as they are known without running anything, or None if ``inputs`` is not
    such a list (then Keras reports it)."""
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 3:
        return None
    shapes = []
    for x in inputs:
        shape = getattr(x, "shape", None)
        if shape is None:
            return None
        try:
            shapes.append(tuple(None if s is None else int(s) for s in shape))
        except (TypeError, ValueError):  # e.g. a TensorShape of unknown rank
            return None
    return shapes


def _check_batch_sizes(shapes, where):
    """Refuse inputs whose known batch sizes differ, naming both.

    Args:
        shapes: dict from the inputs' names to their shapes; each is compared
            with the first whose batch size is known.
        where: str, the layer's name for the message.
    """
    known = [(name, shape) for name, shape in shapes.items() if shape[0] is not None]
    for name, shape in known[1:]:
        first, first_shape = known[0]
        if shape[0] != first_shape[0]:
            raise ValueError(
                f"{where}: `{name}` must have the batch size of "
                f"`{first}` ({first_shape[0]}), got {shape[0]} (`{name}` of "
                f"shape {shape}, `{first}` of shape {first_shape})"
            )
