"""JAX: ``keras.distribution`` (``DataParallel``, ``ModelParallel``).

Found by ``ats.distribute`` through ``ats.backends.implementation``.
"""

import os

import jax
import keras

from ...distribute.setup import Setup, one_device, select_devices

_BATCH, _MODEL = "batch", "model"


class JaxSetup(Setup):
    """A ``keras.distribution.Distribution`` made current in ``scope()``.

    Args:
        strategy: str, ``"data_parallel"`` or ``"model_parallel"``.
        distribution: the ``keras.distribution.Distribution``.

    Keras's JAX trainer assembles the global batch from every process's
    local batch (``jax.make_array_from_process_local_data``), so each process
    feeds its own block of the data (``shard``), for evaluation too.
    """

    shards_data = True

    def __init__(self, strategy, distribution):
        self.strategy = strategy
        self.engine = distribution
        self.num_replicas = distribution.num_model_replicas
        self.num_processes = jax.process_count()
        self.process_index = jax.process_index()

    def barrier(self):
        """``multihost_utils.sync_global_devices`` across the processes."""
        if self.num_processes > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("ats.distribute.barrier")

    def scope(self):
        """``distribution.scope()``: build, compile, fit and predict in it.

        Returns:
            A context manager.
        """
        return self.engine.scope()


class ChannelParallel(keras.distribution.ModelParallel):
    """``ModelParallel`` that shards output channels over the ``model`` axis.

    Every variable whose path ends in ``kernel`` or ``bias`` and whose last
    axis (the output channels of ``Dense`` and ``Conv`` layers) the
    ``model`` axis divides is sharded along that axis; every other variable
    (e.g. a one-channel attention output, the sampling state) is replicated.
    For other layouts use ``keras.distribution.ModelParallel`` with a
    ``keras.distribution.LayoutMap`` directly.

    Args:
        device_mesh: a ``keras.distribution.DeviceMesh`` with axes
            ``("batch", "model")``.
    """

    def __init__(self, device_mesh):
        super().__init__(
            layout_map=keras.distribution.LayoutMap(device_mesh), batch_dim_name=_BATCH
        )

    def get_variable_layout(self, variable):
        if getattr(variable, "_layout", None) is not None:
            return variable._layout
        shape = tuple(variable.shape)
        model_size = self.device_mesh.shape[self.device_mesh.axis_names.index(_MODEL)]
        name = variable.path.rsplit("/", 1)[-1]
        axes = [None] * len(shape)
        if name in ("kernel", "bias") and shape and shape[-1] % model_size == 0:
            axes[-1] = _MODEL
        return keras.distribution.TensorLayout(axes, self.device_mesh)


def _devices(devices):
    return select_devices(devices, keras.distribution.list_devices(), "gpu:0")


def configure(
    strategy,
    devices,
    model_parallel,
    coordinator_address=None,
    num_processes=None,
    process_id=None,
):
    """``ats.distribute.configure`` on JAX (arguments validated there).

    Multi-host: with ``coordinator_address``/``num_processes``/
    ``process_id`` (or the ``KERAS_DISTRIBUTION_*`` environment variables)
    it first calls ``keras.distribution.initialize``, which must happen
    before any JAX computation.

    Args:
        strategy: str, ``"auto"``, ``"none"``, ``"data_parallel"`` or
            ``"model_parallel"``.
        devices: None, int or list of device names.
        model_parallel: int, the size of the ``model`` mesh axis.
        coordinator_address: str or None, ``"host:port"`` of process 0.
        num_processes: int or None.
        process_id: int or None.

    Returns:
        A ``Setup`` (``JaxSetup`` unless the strategy is ``"none"``).
    """
    if (
        coordinator_address is not None
        or num_processes is not None
        or process_id is not None
        or "KERAS_DISTRIBUTION_JOB_ADDRESSES" in os.environ
    ):
        keras.distribution.initialize(coordinator_address, num_processes, process_id)
    names = _devices(devices)
    if strategy == "auto":
        if model_parallel > 1:
            strategy = "model_parallel"
        else:
            strategy = "data_parallel" if len(names) > 1 else "none"
    if strategy == "none":
        return one_device(devices, names)
    if strategy == "data_parallel":
        return JaxSetup(strategy, keras.distribution.DataParallel(devices=names))
    if len(names) % model_parallel:
        raise ValueError(
            f"configure: `model_parallel` ({model_parallel}) must divide the "
            f"number of devices ({len(names)})"
        )
    mesh = keras.distribution.DeviceMesh(
        (len(names) // model_parallel, model_parallel), (_BATCH, _MODEL), names
    )
    return JaxSetup(strategy, ChannelParallel(mesh))


def simulate_cpu_devices(count):
    """Split the host CPU into ``count`` JAX devices (before JAX starts).

    Args:
        count: int >= 1.
    """
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError as error:
        raise RuntimeError(
            "simulate_cpu_devices must be called before JAX runs its first "
            "operation (or set XLA_FLAGS=--xla_force_host_platform_device_"
            f"count={count} before starting Python)"
        ) from error


def batch_multiple():
    """The devices of this process that the batch axis is split across.

    Returns:
        int, 1 without a current ``keras.distribution``.
    """
    distribution = keras.distribution.distribution()
    if distribution is None:
        return 1
    return max(1, distribution.num_model_replicas // jax.process_count())
