"""Draw positions from an attention distribution."""

import functools
import numbers
import warnings

import keras
import numpy as np
from keras import ops

from .. import checks
from ..backends import implementation
from .seeds import replica_seed


def _original_call_form(function):
    """Accept the original library's ``sample(n_samples, attention,
    sample_space, replace=False, use_logits=False)`` (``sample_space`` third,
    positionally or by keyword) next to the modern signature.

    The rule, which no modern call can meet: a third positional argument that
    is a tuple, list or 1-D numpy array (never a bool, which is the modern
    ``replace``), or a ``sample_space=`` keyword, is the original's
    ``sample_space``. It must equal the attention's spatial shape (it is
    redundant); the call then warns with a ``DeprecationWarning`` and the
    positional arguments after it are the original's ``replace`` and
    ``use_logits``. With ``use_logits=True`` that call returns what the
    original returned: the logits of the sampled positions (the modern call
    returns their probabilities).
    """

    @functools.wraps(function)
    def wrapper(n_samples, attention, *args, **kwargs):
        original = "sample_space" in kwargs or (bool(args) and not _is_bool(args[0]))
        if not original:
            return function(n_samples, attention, *args, **kwargs)
        if "sample_space" in kwargs:
            if len(args) > 2:
                raise TypeError(
                    "sample: with the keyword `sample_space` at most 4 "
                    "positional arguments are accepted (n_samples, attention, "
                    f"replace, use_logits), got {len(args) + 2}"
                )
            sample_space = kwargs.pop("sample_space")
        else:
            sample_space, args = args[0], args[1:]
            if len(args) > 2:
                raise TypeError(
                    "sample: the original call form sample(n_samples, "
                    "attention, sample_space, replace, use_logits) takes at "
                    f"most 5 positional arguments, got {len(args) + 3}"
                )
        for name, value in zip(("replace", "use_logits"), args):
            if name in kwargs:
                raise TypeError(f"sample: got multiple values for `{name}`")
            kwargs[name] = value
        _check_sample_space(sample_space, attention)
        use_logits = kwargs.get("use_logits", False)
        returned = (
            " With use_logits=True it returns the sampled logits, as the "
            "original did; the modern call returns their probabilities "
            "(softmax)."
            if _is_bool(use_logits) and use_logits
            else ""
        )
        warnings.warn(
            "sample(n_samples, attention, sample_space, ...) is the original "
            "library's call form: `sample_space` is read from `attention`'s "
            "shape now; call sample(n_samples, attention, replace=..., "
            f"use_logits=...).{returned}",
            DeprecationWarning,
            stacklevel=2,
        )
        positions, sampled = function(n_samples, attention, **kwargs)
        if use_logits:
            # The original returned the entries of `attention` as given.
            sampled = _entries_at(attention, positions)
        return positions, sampled

    return wrapper


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def _is_int(value):
    return isinstance(value, numbers.Integral) and not _is_bool(value)


def _check_sample_space(sample_space, attention):
    """Refuse a ``sample_space`` that is not the attention's spatial shape."""
    spatial = tuple(np.shape(attention)[1:])
    modern = (
        "; the modern call is sample(n_samples, attention, replace=..., "
        "use_logits=...), with the sample space read from `attention`"
    )
    expected = f"a tuple of ints equal to `attention`'s spatial shape {spatial}"
    if isinstance(sample_space, np.ndarray) and sample_space.ndim == 1:
        sample_space = sample_space.tolist()
    if not isinstance(sample_space, (tuple, list)) or not all(
        entry is None or _is_int(entry) for entry in sample_space
    ):
        raise TypeError(
            f"sample: `replace` must be a bool, got {sample_space!r} of type "
            f"{type(sample_space).__name__}; as the original library's third "
            f"argument `sample_space` it must be {expected}{modern}"
        )
    same = len(sample_space) == len(spatial) and all(
        given is None or known is None or int(given) == known
        for given, known in zip(sample_space, spatial)
    )
    if not same:
        raise ValueError(
            f"sample: the original library's `sample_space` must be {expected}, "
            f"got {tuple(sample_space)!r}{modern}"
        )


@_original_call_form
def sample(
    n_samples,
    attention,
    replace=False,
    use_logits=False,
    seed=None,
    deterministic=False,
):
    """Sample ``n_samples`` positions per data point from ``attention``.

    Sampling is an exponential race, the Gumbel-max trick without its
    logarithms: position ``k`` gets the key ``a_k / E_k`` with ``E_k`` drawn
    from Exp(1) (the order of ``log a_k + G_k`` with Gumbel noise ``G_k =
    -log E_k``). With replacement each draw is the argmax of independent
    keys; without replacement the draws are the top-``n_samples`` keys of
    one race, in decreasing order, which is the order of sequential sampling
    without replacement (Gumbel top-k). Positions with zero probability get
    the negative key ``-E_k``: they are drawn only after every position with
    positive probability, in random order among themselves.

    The original library's call form ``sample(n_samples, attention,
    sample_space, replace=False, use_logits=False)`` is accepted with a
    ``DeprecationWarning``: a third positional argument that is a tuple, list
    or 1-D array of ints (the modern third argument ``replace`` is a bool),
    or a ``sample_space=`` keyword, is the original's ``sample_space``, which
    must equal the attention's spatial shape ``S``; the positional arguments
    after it are ``replace`` and ``use_logits``. In that form, and only there,
    ``use_logits=True`` returns the sampled logits as the original did
    (docs/migrating.md).

    Args:
        n_samples: int, the number of positions ``N`` per data point.
        attention: ``(B, *S)`` tensor, the attention distribution over the
            positions ``S`` of each data point (probabilities that sum to 1,
            or unnormalized log-probabilities with ``use_logits=True``).
        replace: bool, sample with replacement (i.i.d.) or without.
        use_logits: bool, whether ``attention`` holds logits.
        seed: int, ``keras.random.SeedGenerator`` or None.
        deterministic: bool, return the ``N`` most probable positions in
            decreasing order of probability instead of sampling (for
            inference).

    Returns:
        ``(positions, sampled_attention)``: ``(B, N, len(S))`` int32 positions
        and ``(B, N)`` float32 probabilities of the sampled positions,
        differentiable with respect to ``attention``.

    Example:
        >>> import keras
        >>> from ats.core import sample
        >>> logits = keras.random.normal((2, 8, 8), seed=0)
        >>> attention = keras.ops.reshape(
        ...     keras.ops.softmax(keras.ops.reshape(logits, (2, 64))), (2, 8, 8)
        ... )
        >>> positions, probabilities = sample(5, attention, seed=1)
        >>> tuple(positions.shape), tuple(probabilities.shape)
        ((2, 5, 2), (2, 5))
    """
    n_samples = checks.integer("n_samples", n_samples, minimum=1, where="sample")
    replace = checks.boolean("replace", replace, where="sample")
    use_logits = checks.boolean("use_logits", use_logits, where="sample")
    deterministic = checks.boolean("deterministic", deterministic, where="sample")
    attention = ops.cast(attention, "float32")
    spatial = tuple(attention.shape[1:])
    if not spatial:
        raise ValueError(
            "sample: `attention` must have shape (B, *positions) with at "
            f"least one position axis, got shape {tuple(attention.shape)}"
        )
    flat = ops.reshape(attention, (ops.shape(attention)[0], -1))
    n_positions = flat.shape[1]
    if not replace and n_positions is not None and n_samples > n_positions:
        raise ValueError(
            f"sample: without replacement `n_samples` must be at most the "
            f"number of positions ({n_positions}), got {n_samples}"
        )

    probabilities = ops.softmax(flat, axis=-1) if use_logits else flat
    keys = ops.stop_gradient(flat)

    if deterministic:
        indices = ops.top_k(keys, n_samples, sorted=True)[1]
    elif replace:
        noise = _exponential((ops.shape(flat)[0], n_samples, ops.shape(flat)[1]), seed)
        indices = ops.argmax(_race_keys(keys[:, None, :], noise, use_logits), axis=-1)
    else:
        indices = ops.top_k(
            _race_keys(keys, _exponential(ops.shape(flat), seed), use_logits),
            n_samples,
            sorted=True,
        )[1]
    indices = ops.cast(indices, "int32")

    sampled_attention = ops.take_along_axis(probabilities, indices, axis=1)
    return unravel_positions(indices, spatial), sampled_attention


def _entries_at(attention, positions):
    """The float32 entries ``(B, N)`` of ``attention`` ``(B, *S)`` at
    ``positions`` ``(B, N, len(S))``."""
    attention = ops.cast(attention, "float32")
    spatial = tuple(attention.shape[1:])
    strides = [1]
    for extent in reversed(spatial[1:]):
        strides.insert(0, strides[0] * extent)
    indices = ops.sum(positions * ops.convert_to_tensor(strides, "int32"), axis=-1)
    flat = ops.reshape(attention, (ops.shape(attention)[0], -1))
    return ops.take_along_axis(flat, indices, axis=1)


def unravel_positions(indices, spatial):
    """Turn flat row-major indices ``(B, N)`` into positions ``(B, N, ndim)``.

    Args:
        indices: ``(B, N)`` int32 indices into the flattened ``spatial``.
        spatial: tuple, the shape ``S`` the indices were flattened from.

    Returns:
        ``(B, N, len(S))`` int32 positions.
    """
    coordinates = []
    for extent in reversed(spatial):
        coordinates.append(ops.mod(indices, extent))
        indices = ops.floor_divide(indices, extent)
    return ops.stack(coordinates[::-1], axis=-1)


def _race_keys(keys, noise, use_logits):
    """The keys of an exponential race: ``a / E``, or ``z - log E`` for
    logits ``z`` (the same order); ``-E`` where the probability ``a`` is 0.

    Args:
        keys: ``(B, ..., P)`` probabilities, or logits with ``use_logits``.
        noise: Exp(1) noise ``E`` of the shape of ``keys`` (or broadcast).
        use_logits: bool.
    """
    if use_logits:
        return keys - ops.log(noise)
    return ops.where(keys > 0, keys / noise, -noise)


def _exponential(shape, seed):
    """Exp(1) noise, positive and finite for every uniform draw.

    Each replica of a distributed run draws its own noise (``seed`` with the
    replica index folded in, see ``ats.core.seeds.replica_seed``).
    """
    return -ops.log(_uniform(shape, 1e-20, replica_seed(seed)))


def _uniform(shape, minval, seed):
    """Uniform noise in ``[minval, 1)``, as ``keras.random.uniform``.

    A layer's ``SeedGenerator`` draws through the backend's own uniform
    noise where it has one (``ats.backends.tensorflow.random.uniform``:
    ``keras.random.uniform`` lets ``tf.random`` pick an algorithm that XLA
    runs about 35 times slower than the others); the draws come from the
    same seed state either way.
    """
    backend_uniform = implementation("random", "uniform")
    if backend_uniform is not None and isinstance(seed, keras.random.SeedGenerator):
        return backend_uniform(shape, minval, seed)
    return keras.random.uniform(shape, minval=minval, maxval=1.0, seed=seed)
