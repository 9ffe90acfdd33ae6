"""Seeds that differ across the replicas of a distributed run.

On JAX a distributed program is one SPMD computation over the global batch,
so each example's draw is already its own. On TensorFlow and PyTorch every
replica runs the model with a copy of the same seed state, so
``replica_seed`` folds the replica index into the seed (replica 0 keeps the
seed as is). The sampler draws through it; ``ats.distribute`` re-exports
these functions under the same names.
"""

import keras

from .. import checks
from ..backends import implementation

__all__ = [
    "independent_sampling",
    "replica_index",
    "replica_seed",
    "set_independent_sampling",
]

# Odd multiplier (2**32 / golden ratio) spreading replica indices over the
# 31-bit range of seeds; replica 0 maps to 0, i.e. keeps its seed.
_REPLICA_SEED_STRIDE = 0x9E3779B1
_SEED_RANGE = 2**31

_independent_sampling = True


def replica_index():
    """The index of the replica running the current computation.

    Returns:
        0 when not distributed and on JAX (one SPMD program over the global
        batch); the replica id (a scalar tensor inside a replica function)
        under ``tf.distribute``; the process rank under
        ``torch.distributed``.

    Example:
        >>> from ats.core.seeds import replica_index
        >>> replica_index()
        0
    """
    backend_index = implementation("replicas", "replica_index")
    return 0 if backend_index is None else backend_index()


def set_independent_sampling(enabled):
    """Choose whether replicas draw independent positions (the default).

    With ``False`` every replica draws with the same seed, so replicas that
    see the same data sample the same positions (e.g. to debug). JAX draws
    once over the global batch and cannot replicate samples.

    Args:
        enabled: bool.
    """
    global _independent_sampling
    enabled = checks.boolean("enabled", enabled, where="set_independent_sampling")
    if not enabled and keras.backend.backend() == "jax":
        raise ValueError(
            "set_independent_sampling: `enabled=False` is not supported on "
            "JAX, whose SPMD program draws every example's positions "
            "independently from one global draw"
        )
    _independent_sampling = enabled


def independent_sampling():
    """Whether replicas draw independent positions.

    Returns:
        bool, see ``set_independent_sampling``.
    """
    return _independent_sampling


def _seed_offset(index):
    """``f(index)``, the offset replica ``index`` adds to its seed."""
    if isinstance(index, int):
        return index * _REPLICA_SEED_STRIDE % _SEED_RANGE
    # A tensor (tf.distribute): int64 products do not overflow.
    return keras.ops.mod(
        keras.ops.cast(index, "int64") * _REPLICA_SEED_STRIDE, _SEED_RANGE
    )


class _ReplicaSeed(keras.random.SeedGenerator):
    """``seed`` with a replica index folded in, for ``keras.random`` ops.

    ``keras.random`` ops take an int or a ``SeedGenerator`` and read the
    latter's state through ``next()`` only when they draw (not while Keras
    traces shapes, e.g. on PyTorch's meta device). This one owns no variable,
    so it can be made inside a traced function, and adds the offset of the
    replica to the first entry of the state that ``seed`` gives then.
    """

    def __init__(self, seed, index):
        # No SeedGenerator.__init__: the state belongs to `seed`.
        self._seed = seed
        self._index = index

    def next(self, ordered=True):
        if isinstance(self._seed, keras.random.SeedGenerator):
            state = self._seed.next(ordered)
        elif self._seed is None:
            state = keras.random.randint((2,), 0, _SEED_RANGE - 1, dtype="int32")
        else:
            state = keras.ops.convert_to_tensor([self._seed, 0], dtype="int32")
        offset = keras.ops.cast(_seed_offset(self._index), state.dtype)
        return state + keras.ops.stack([offset, keras.ops.zeros_like(offset)])


def replica_seed(seed):
    """``seed`` made distinct for the current replica.

    Replica ``r`` draws with the seed state ``(s + f(r), counter)`` where
    ``(s, counter)`` is the state ``seed`` gives and ``f(r) = r * 0x9E3779B1
    mod 2**31`` (``f(0) = 0``): replica 0, and any run that is not
    distributed, keeps ``seed`` unchanged.

    Args:
        seed: int, ``keras.random.SeedGenerator`` or None (Keras's global
            generator), as accepted by ``keras.random`` ops.

    Returns:
        ``seed`` itself on replica 0, when not distributed, on JAX or with
        ``set_independent_sampling(False)``; otherwise an int or a seed
        object for ``keras.random`` ops that advances ``seed`` if it is a
        generator.

    Example:
        >>> from ats.core.seeds import replica_seed
        >>> replica_seed(7)  # not distributed: unchanged
        7
    """
    if not isinstance(seed, keras.random.SeedGenerator):
        try:
            seed = checks.seed("seed", seed)
        except TypeError:
            checks.fail(
                "seed",
                "an int, a keras.random.SeedGenerator or None",
                seed,
                "replica_seed",
                TypeError,
            )
    index = replica_index()
    if not _independent_sampling or (isinstance(index, int) and index == 0):
        return seed
    if isinstance(index, int) and not isinstance(seed, keras.random.SeedGenerator):
        if seed is None:  # a draw of Keras's global generator (eager)
            seed = int(
                keras.ops.convert_to_numpy(keras.random.randint((), 0, _SEED_RANGE - 1))
            )
        return (seed + _seed_offset(index)) % 2**32
    return _ReplicaSeed(seed, index)
