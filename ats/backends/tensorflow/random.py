"""Uniform noise for ``ats.core.sampling`` on TensorFlow.

``keras.random.uniform`` lets ``tf.random`` pick its stateless algorithm,
which XLA on the CPU runs about 35 times slower than the others (70 ms
against 1-2 ms for 8 x 32400 draws). ``uniform`` draws from the same seed
state with the algorithm of ``algorithm()``.
"""

import tensorflow as tf

# Not exported by TensorFlow: the graph being traced, and whether XLA
# compiles it. A TensorFlow without them gets Philox everywhere.
try:
    from tensorflow.python.framework.ops import get_default_graph
    from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext
except ImportError:
    GraphOrParentsInXlaContext = None

__all__ = ["algorithm", "uniform"]


def uniform(shape, minval, seed):
    """Uniform noise in ``[minval, 1)`` from a ``keras.random.SeedGenerator``.

    Args:
        shape: the shape of the noise.
        minval: float, the lower bound.
        seed: a ``keras.random.SeedGenerator``, advanced by one draw.

    Returns:
        float32 tensor of ``shape``.
    """
    state = tf.cast(tf.math.floormod(seed.next(), tf.int32.max - 1), "int32")
    return tf.random.stateless_uniform(
        shape, seed=state, minval=minval, maxval=1.0, alg=algorithm()
    )


def algorithm():
    """The ``tf.random`` algorithm of ``uniform``: Threefry under XLA,
    Philox elsewhere.

    In the sampler compiled by XLA on the CPU, Threefry takes 1.9 ms where
    Philox takes 4.5 ms (8 x 32400 draws, keys and top-k included); TF's
    own kernels, outside XLA, have no Threefry. Whether the function being
    traced is compiled by XLA is only exposed by TF's internal API: without
    it, Philox.

    Returns:
        ``"threefry"`` or ``"philox"``.
    """
    if GraphOrParentsInXlaContext is None:
        return "philox"
    return "threefry" if GraphOrParentsInXlaContext(get_default_graph()) else "philox"
