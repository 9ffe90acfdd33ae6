"""``ats.lazy.host_call`` on TensorFlow: ``tf.numpy_function``.

``tf.numpy_function`` runs inside ``tf.function`` (and per replica under
``tf.distribute``) but XLA cannot compile it: ``SUPPORTS_JIT`` tells the
layers that use it to set ``supports_jit = False``.
"""

import numpy as np
import tensorflow as tf

__all__ = ["SUPPORTS_JIT", "host_call"]

SUPPORTS_JIT = False


def host_call(function, args, shape, dtype, batched=False):
    """``ats.lazy.host_call`` through ``tf.numpy_function``.

    Args:
        function, shape, dtype: as for ``ats.lazy.host_call`` (``dtype``
            standardized; ``shape`` may hold None in graphs).
        args: list of tensors, gradients already stopped.
        batched: unused: ``numpy_function`` already runs per replica.

    Returns:
        The output tensor, with its static shape set to ``shape``.
    """

    def call(*arrays):
        return np.asarray(function(*arrays), dtype=dtype)

    result = tf.numpy_function(call, args, dtype, stateful=True)
    result.set_shape(shape)
    return result
