"""Call a numpy function on the host from inside a (compiled) Keras model.

Keras has no operation for this, so this module is the one place of the
library that speaks to each backend directly: ``jax.pure_callback`` under
JAX (inside ``jit``), ``tf.numpy_function`` under TensorFlow (inside
``tf.function``; XLA cannot compile it, see ``host_call_supports_jit``) and a
plain call under PyTorch (eager). The function's inputs never need a
gradient (they are integer positions and ids here) and its output gets none.
"""

import keras
import numpy as np
from keras import ops

# Not exported by keras: whether Keras is only inferring output shapes.
from keras.src.backend.common.symbolic_scope import in_symbolic_scope

__all__ = ["host_call", "host_call_supports_jit"]


def host_call_supports_jit():
    """Whether a layer using ``host_call`` can run in an XLA-compiled step.

    True on JAX (``pure_callback`` compiles) and PyTorch (``torch.compile``
    falls back to eager around it); False on TensorFlow, whose
    ``numpy_function`` XLA cannot compile. A layer sets its
    ``supports_jit`` from this, so ``jit_compile="auto"`` picks the right
    mode.
    """
    return keras.backend.backend() != "tensorflow"


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
    """
    dtype = keras.backend.standardize_dtype(dtype)
    backend = keras.backend.backend()
    args = [
        ops.stop_gradient(a) if keras.backend.is_float_dtype(a.dtype) else a
        for a in (ops.convert_to_tensor(a) for a in args)
    ]
    if backend == "jax":
        import jax

        def call(*arrays):
            return np.asarray(function(*arrays), dtype=dtype)

        def callback(*arrays):
            local = (arrays[0].shape[0], *shape[1:]) if batched else shape
            return jax.pure_callback(call, jax.ShapeDtypeStruct(local, dtype), *arrays)

        batch_axis = _jax_batch_axis() if batched else None
        if batch_axis is None:
            return callback(*args)
        mesh, axis = batch_axis
        spec = jax.sharding.PartitionSpec(axis)
        return jax.shard_map(
            callback,
            mesh=mesh,
            in_specs=(spec,) * len(args),
            out_specs=spec,
            check_vma=False,
        )(*args)
    if backend == "tensorflow":
        import tensorflow as tf

        def call(*arrays):
            return np.asarray(function(*arrays), dtype=dtype)

        result = tf.numpy_function(call, args, dtype, stateful=True)
        result.set_shape(shape)
        return result
    if backend == "torch":
        if in_symbolic_scope():
            # Keras infers shapes by running the layer on placeholder
            # tensors (all ones); the host must not read them.
            return ops.zeros(shape, dtype=dtype)
        result = function(*[ops.convert_to_numpy(a) for a in args])
        return ops.convert_to_tensor(np.asarray(result, dtype=dtype))
    raise NotImplementedError(
        f"host_call: no host callback for the {backend!r} backend; the lazy "
        "path runs on jax, tensorflow and torch"
    )


def _jax_batch_axis():
    """``(jax mesh, batch axis name)`` of the current ``keras.distribution``
    when its batch axis spans several devices, else None."""
    distribution = keras.distribution.distribution()
    axis = getattr(distribution, "batch_dim_name", None)
    if axis is None:
        return None
    mesh = distribution.device_mesh
    if mesh.shape[list(mesh.axis_names).index(axis)] == 1:
        return None
    return mesh.backend_mesh, axis
