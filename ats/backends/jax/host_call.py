"""``ats.lazy.host_call`` on JAX: ``jax.pure_callback``, inside ``jit``."""

import jax
import keras
import numpy as np

__all__ = ["host_call"]


def host_call(function, args, shape, dtype, batched=False):
    """``ats.lazy.host_call`` through ``jax.pure_callback``.

    With ``batched=True``, under a ``keras.distribution`` whose batch axis
    spans several devices, the callback runs once per device on that
    device's examples (``jax.shard_map``), in the process that owns the
    device: each host reads for its own examples.

    Args:
        function, shape, dtype, batched: as for ``ats.lazy.host_call``
            (``dtype`` standardized).
        args: list of arrays, gradients already stopped.

    Returns:
        The output array.
    """

    def call(*arrays):
        return np.asarray(function(*arrays), dtype=dtype)

    def callback(*arrays):
        local = (arrays[0].shape[0], *shape[1:]) if batched else shape
        return jax.pure_callback(call, jax.ShapeDtypeStruct(local, dtype), *arrays)

    if not any(isinstance(a, jax.core.Tracer) for a in args):
        # Called eagerly (e.g. to draw pictures): the arrays are at hand, and
        # an eager batch need not split evenly across the devices.
        return jax.numpy.asarray(call(*(np.asarray(a) for a in args)))
    batch_axis = _batch_axis() if batched else None
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


def _batch_axis():
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
