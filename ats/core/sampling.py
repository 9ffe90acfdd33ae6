"""Draw positions from an attention distribution."""

import keras
from keras import ops

from ..distribute import replica_seed


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
            f"least one position axis, got shape {tuple(attention.shape)}"
        )
    flat = ops.reshape(attention, (ops.shape(attention)[0], -1))
    n_positions = flat.shape[1]
    if not replace and n_positions is not None and n_samples > n_positions:
        raise ValueError(
            f"sample: without replacement `n_samples` must be at most the "
            f"number of positions ({n_positions}), got {n_samples}"
        )

    if use_logits:
        probabilities = ops.softmax(flat, axis=-1)
    else:
        probabilities = flat
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
    replica index folded in, see ``ats.distribute.replica_seed``).
    """
    return -ops.log(_uniform(shape, 1e-20, replica_seed(seed)))


def _uniform(shape, minval, seed):
    """Uniform noise in ``[minval, 1)``, as ``keras.random.uniform``.

    On TensorFlow ``keras.random.uniform`` lets ``tf.random`` pick its
    stateless algorithm, which XLA on the CPU runs about 35 times slower
    than the others (70 ms against 1-2 ms for 8 x 32400 draws): a layer's
    ``SeedGenerator`` draws from the same seed state with the algorithm of
    ``_tensorflow_algorithm``.
    """
    if keras.backend.backend() == "tensorflow" and isinstance(
        seed, keras.random.SeedGenerator
    ):
        import tensorflow as tf

        state = tf.cast(tf.math.floormod(seed.next(), tf.int32.max - 1), "int32")
        return tf.random.stateless_uniform(
            shape, seed=state, minval=minval, maxval=1.0, alg=_tensorflow_algorithm()
        )
    return keras.random.uniform(shape, minval=minval, maxval=1.0, seed=seed)


def _tensorflow_algorithm():
    """The ``tf.random`` algorithm of ``_uniform``: Threefry under XLA,
    Philox elsewhere.

    In the sampler compiled by XLA on the CPU, Threefry takes 1.9 ms where
    Philox takes 4.5 ms (8 x 32400 draws, keys and top-k included); TF's
    own kernels, outside XLA, have no Threefry. Whether the function being
    traced is compiled by XLA is only exposed by TF's internal API: without
    it, Philox.
    """
    try:
        from tensorflow.python.framework.ops import get_default_graph
        from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext
    except ImportError:
        return "philox"
    return "threefry" if GraphOrParentsInXlaContext(get_default_graph()) else "philox"


def _validate_n_samples(n_samples):
    if isinstance(n_samples, bool) or not isinstance(n_samples, int):
        raise TypeError(
            "`n_patches` (n_samples) must be a positive int, got "
            f"{n_samples!r} of type {type(n_samples).__name__}"
        )
    if n_samples <= 0:
        raise ValueError(
            f"`n_patches` (n_samples) must be a positive int, got {n_samples}"
        )
