"""Call a numpy function on the host from inside a (compiled) Keras model.

Keras has no operation for this. The generic implementation here calls the
function eagerly (PyTorch, whose training step runs eagerly); JAX and
TensorFlow have their own (``ats.backends.jax.host_call``:
``jax.pure_callback`` inside ``jit``; ``ats.backends.tensorflow.host_call``:
``tf.numpy_function`` inside ``tf.function``, which XLA cannot compile, see
``host_call_supports_jit``). The function's inputs never need a gradient
(they are integer positions and ids here) and its output gets none.
"""

import keras
import numpy as np
from keras import ops

from ..backends import implementation
from ..backends.keras_internals import in_symbolic_scope

__all__ = ["host_call", "host_call_supports_jit"]


def host_call_supports_jit():
    """Whether a layer using ``host_call`` can run in an XLA-compiled step.

    True on JAX (``pure_callback`` compiles) and PyTorch (``torch.compile``
    falls back to eager around it); False on TensorFlow, whose
    ``numpy_function`` XLA cannot compile. A layer sets its
    ``supports_jit`` from this, so ``jit_compile="auto"`` picks the right
    mode.

    Returns:
        bool.
    """
    supports_jit = implementation("host_call", "SUPPORTS_JIT")
    return True if supports_jit is None else supports_jit


def host_call(function, args, shape, dtype, batched=False):
    """Run ``function(*numpy_args)`` on the host and return a tensor.

    With ``batched=True`` every argument and the result have the examples on
    their first axis, and under a ``keras.distribution`` on JAX whose batch
    axis spans several devices the function runs once per device on that
    device's examples (``jax.shard_map``), in the process that owns the
    device: each host reads for its own examples. (TensorFlow's
    ``numpy_function`` already runs per replica, and each PyTorch process
    per process.)

    Args:
        function: a function of numpy arrays returning one numpy array of
            ``shape`` and ``dtype``; it may raise, and the backend reports
            its error (wrapped by JAX and TensorFlow, with its message).
        args: list of tensors, passed to ``function`` as numpy arrays.
        shape: the output shape (concrete ints under JAX and PyTorch; may
            hold None under TensorFlow graphs).
        dtype: the output dtype.
        batched: bool, whether the arguments and the result are batches
            that may be split across devices (see above).

    Returns:
        The output as a tensor of the active backend, without gradient.

    Example:
        >>> import numpy as np
        >>> from keras import ops
        >>> from ats.lazy import host_call
        >>> doubled = host_call(lambda a: 2 * a, [np.arange(3)], (3,), "int32")
        >>> ops.convert_to_numpy(doubled).tolist()
        [0, 2, 4]
    """
    dtype = keras.backend.standardize_dtype(dtype)
    args = [
        ops.stop_gradient(a) if keras.backend.is_float_dtype(a.dtype) else a
        for a in (ops.convert_to_tensor(a) for a in args)
    ]
    backend_call = implementation("host_call", "host_call")
    if backend_call is not None:
        return backend_call(function, args, shape, dtype, batched)
    if in_symbolic_scope():
        # Keras infers shapes by running the layer on placeholder tensors
        # (all ones); the host must not read them.
        return ops.zeros(shape, dtype=dtype)
    result = function(*[ops.convert_to_numpy(a) for a in args])
    return ops.convert_to_tensor(np.asarray(result, dtype=dtype))
