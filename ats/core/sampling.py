"""Draw positions from an attention distribution."""

import keras
from keras import ops

from ..distribute import replica_seed

# Gumbel keys of zero-probability positions are shifted below every key of a
# positive one (log-probabilities of float32 are >= -104, Gumbel noise of a
# float32 uniform lies in [-3, 17]), so they are drawn only once the whole
# mass has been drawn, and in random order among themselves.
_ZERO_MASS_SHIFT = 1000.0


def sample(n_samples, attention, replace=False, use_logits=False, seed=None,
           deterministic=False):
    """Sample ``n_samples`` positions per data point from ``attention``.

    Sampling uses the Gumbel-max trick: with replacement each draw is the
    argmax of independently perturbed log-probabilities; without replacement
    the draws are the top-``n_samples`` of one perturbation (Gumbel top-k),
    returned in draw order, which is the order of sequential sampling without
    replacement. Positions with zero probability are drawn only after every
    position with positive probability has been drawn.

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
        >>> attention = keras.ops.softmax(keras.random.normal((2, 8, 8)), axis=...)
        >>> positions, probabilities = sample(5, attention, seed=1)
    """
    _validate_n_samples(n_samples)
    attention = ops.cast(attention, "float32")
    spatial = tuple(attention.shape[1:])
    if not spatial:
        raise ValueError(
            "sample: `attention` must have shape (B, *positions) with at "
            f"least one position axis, got shape {tuple(attention.shape)}")
    flat = ops.reshape(attention, (ops.shape(attention)[0], -1))
    n_positions = flat.shape[1]
    if not replace and n_positions is not None and n_samples > n_positions:
        raise ValueError(
            f"sample: without replacement `n_samples` must be at most the "
            f"number of positions ({n_positions}), got {n_samples}")

    if use_logits:
        log_probabilities = ops.log_softmax(flat, axis=-1)
        probabilities = ops.exp(log_probabilities)
    else:
        probabilities = flat
        positive = flat > 0
        log_probabilities = ops.where(
            positive, ops.log(ops.where(positive, flat, 1.0)), -_ZERO_MASS_SHIFT)
    keys = ops.stop_gradient(log_probabilities)

    if deterministic:
        indices = ops.top_k(keys, n_samples, sorted=True)[1]
    elif replace:
        noise = _gumbel((ops.shape(flat)[0], n_samples, ops.shape(flat)[1]),
                        seed)
        indices = ops.argmax(keys[:, None, :] + noise, axis=-1)
    else:
        keys = ops.where(probabilities > 0, keys, keys - _ZERO_MASS_SHIFT)
        indices = ops.top_k(keys + _gumbel(ops.shape(flat), seed), n_samples,
                            sorted=True)[1]
    indices = ops.cast(indices, "int32")

    sampled_attention = ops.take_along_axis(probabilities, indices, axis=1)
    return unravel_positions(indices, spatial), sampled_attention


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


def _gumbel(shape, seed):
    """Standard Gumbel noise, finite for every uniform draw.

    Each replica of a distributed run draws its own noise (``seed`` with the
    replica index folded in, see ``ats.distribute.replica_seed``).
    """
    tiny = 1e-20
    uniform = _uniform(shape, tiny, replica_seed(seed))
    return -ops.log(-ops.log(uniform) + tiny)


def _uniform(shape, minval, seed):
    """Uniform noise in ``[minval, 1)``, as ``keras.random.uniform``.

    On TensorFlow ``keras.random.uniform`` lets ``tf.random`` pick its
    stateless algorithm, which XLA on the CPU runs about 100 times slower
    than Philox (320 ms against 3 ms for 8 x 32400 draws): a layer's
    ``SeedGenerator`` draws with Philox there, from the same seed state.
    """
    if keras.backend.backend() == "tensorflow" and isinstance(
            seed, keras.random.SeedGenerator):
        import tensorflow as tf

        state = tf.cast(tf.math.floormod(seed.next(), tf.int32.max - 1),
                        "int32")
        return tf.random.stateless_uniform(shape, seed=state, minval=minval,
                                           maxval=1.0, alg="philox")
    return keras.random.uniform(shape, minval=minval, maxval=1.0, seed=seed)


def _validate_n_samples(n_samples):
    if isinstance(n_samples, bool) or not isinstance(n_samples, int):
        raise TypeError(
            "`n_patches` (n_samples) must be a positive int, got "
            f"{n_samples!r} of type {type(n_samples).__name__}")
    if n_samples <= 0:
        raise ValueError(
            f"`n_patches` (n_samples) must be a positive int, got {n_samples}")
