"""The distribution set-up: one interface over each backend's engine.

``configure`` sets up the active backend's engine
(``ats.backends.<backend>.distribution``: ``keras.distribution`` on JAX,
``tf.distribute`` on TensorFlow, ``DistributedDataParallel`` on PyTorch) and
returns a ``Setup``; ``Setup`` itself is the single-device set-up that the
engines subclass.
"""

import contextlib
import numbers

import keras

from .. import checks
from ..backends import implementation
from .batches import leading_length, shard_slice

__all__ = [
    "STRATEGIES",
    "Setup",
    "configure",
    "one_device",
    "select_devices",
    "simulate_cpu_devices",
]

# Strategy names accepted by `configure`, per backend.
STRATEGIES = {
    "jax": ("none", "data_parallel", "model_parallel"),
    "tensorflow": ("none", "mirrored", "multi_worker_mirrored"),
    "torch": ("none", "ddp"),
}


class Setup:
    """What ``configure`` set up: one process on its default device.

    The engines (``ats.backends.<backend>.distribution``) subclass it;
    every method has the single-device meaning here (no scope, no wrapping,
    the whole data).

    Attributes:
        strategy: str, the strategy name (``"none"`` here).
        engine: the backend's own object (``keras.distribution.Distribution``,
            ``tf.distribute.Strategy``) or None.
        num_replicas: int, the number of model replicas the global batch is
            split across.
        num_processes: int, the number of processes (hosts or workers).
        process_index: int, the index of this process.
        shards_data: bool, whether each process feeds its own block of the
            data (JAX and PyTorch; ``tf.distribute`` shards the whole data
            itself).
        shards_evaluation: bool, whether evaluation data is sharded like
            training data where ``shards_data`` (not under PyTorch DDP,
            whose metrics are per process).
    """

    strategy = "none"
    engine = None
    num_replicas = 1
    num_processes = 1
    process_index = 0
    shards_data = False
    shards_evaluation = True

    def scope(self):
        """Context to build, compile, fit and predict the model in.

        Returns:
            A context manager.
        """
        return contextlib.nullcontext()

    def wrap(self, model):
        """The model to compile and train (wrapped for the engine if needed).

        Args:
            model: a ``keras.Model``.

        Returns:
            A ``keras.Model`` to call ``compile``/``fit``/``predict`` on.
        """
        return model

    def unwrap(self, model):
        """The original model of ``wrap(model)`` (e.g. to save it).

        Args:
            model: a model returned by ``wrap``.

        Returns:
            The ``keras.Model`` that was wrapped.
        """
        return model

    def shard_slice(self, n, training=True):
        """The examples of ``n`` this process feeds, as a slice.

        Where processes feed their own data (``shards_data``), process ``p``
        of ``P`` gets the block ``[p * (n // P), (p + 1) * (n // P))``: every
        process runs as many steps, and the last ``n % P`` examples belong
        to none. For evaluation under PyTorch DDP (``training=False``) every
        process takes all of them, since Keras' metrics are per process.

        Args:
            n: int, the number of examples.
            training: bool, False for data to evaluate on.

        Returns:
            A ``slice`` of ``range(n)``.
        """
        if not self.shards_data or (not training and not self.shards_evaluation):
            return slice(0, n)
        return shard_slice(n, self.process_index, self.num_processes)

    def shard(self, data, training=True):
        """The part of the data this process feeds to ``fit`` (or evaluates).

        Args:
            data: array or nested structure (tuple, list, dict) of arrays
                with the examples on their first axis.
            training: bool, False for data to evaluate on (see
                ``shard_slice``).

        Returns:
            The same structure with this process's examples.
        """
        n = leading_length(data, "data", "shard")
        rows = self.shard_slice(n, training)
        if rows == slice(0, n):
            return data
        return keras.tree.map_structure(lambda a: a[rows], data)

    def local_batch_size(self, batch_size):
        """The batch this process feeds for a global batch of ``batch_size``.

        Args:
            batch_size: int, the global batch (over every process).

        Returns:
            ``batch_size // num_processes`` where processes feed their own
            data, else ``batch_size``.
        """
        if not self.shards_data:
            return batch_size
        if batch_size % self.num_processes:
            raise ValueError(
                f"the batch size ({batch_size}) must be a multiple of the "
                f"number of processes ({self.num_processes})"
            )
        return batch_size // self.num_processes

    def barrier(self):
        """Wait until every process gets here (nothing with one process).

        E.g. after process 0 wrote files that the others read next.
        """

    def describe(self):
        """The set-up as a JSON-serialisable dict (for a run's records).

        Returns:
            ``{"strategy", "num_replicas", "num_processes"}``.
        """
        return {
            "strategy": self.strategy,
            "num_replicas": self.num_replicas,
            "num_processes": self.num_processes,
        }

    def __repr__(self):
        return (
            f"<{type(self).__name__} strategy={self.strategy!r} "
            f"num_replicas={self.num_replicas} "
            f"process={self.process_index}/{self.num_processes}>"
        )


def configure(
    strategy="auto",
    devices=None,
    model_parallel=1,
    coordinator_address=None,
    num_processes=None,
    process_id=None,
):
    """Set up the active backend's own distribution engine.

    Strategies per backend (``"auto"`` and ``"none"`` everywhere):

    - JAX: ``"data_parallel"`` (``keras.distribution.DataParallel``),
      ``"model_parallel"`` (``keras.distribution.ModelParallel`` on a
      ``(batch, model)`` mesh; see ``ats.backends.jax.distribution.ChannelParallel``).
    - TensorFlow: ``"mirrored"`` (``tf.distribute.MirroredStrategy``),
      ``"multi_worker_mirrored"``
      (``tf.distribute.MultiWorkerMirroredStrategy`` configured by
      ``TF_CONFIG``).
    - PyTorch: ``"ddp"`` (``DistributedDataParallel`` in a process started by
      ``torchrun``; gloo on CPU, NCCL on GPU).

    ``"auto"`` picks the data-parallel strategy when there is more than one
    device or process (``TF_CONFIG`` selects ``"multi_worker_mirrored"``,
    ``torchrun``'s ``WORLD_SIZE`` selects ``"ddp"``) and ``"none"`` otherwise.

    It may be called again in a process (e.g. by each training command): on
    TensorFlow the same strategy and devices give the same
    ``tf.distribute.Strategy`` object, since a second ``MirroredStrategy``
    over the same devices would break the collectives of the first.

    Args:
        strategy: str, the strategy name.
        devices: None (every device of the default type), an int (the first
            ``devices`` of them) or a list of device names (JAX:
            ``"gpu:0"``; TensorFlow: ``"/gpu:0"``). PyTorch uses one device per
            process and takes none.
        model_parallel: int, JAX ``"model_parallel"`` only: the size of the
            mesh's ``model`` axis (the device count must be a multiple).
        coordinator_address: JAX multi-host only: ``"host:port"`` of process
            0, passed to ``keras.distribution.initialize`` (which also reads
            ``KERAS_DISTRIBUTION_*`` environment variables).
        num_processes: JAX multi-host only: the number of processes.
        process_id: JAX multi-host only: the index of this process.

    Returns:
        A ``Setup``: build, compile and train the model in ``setup.scope()``
        on ``setup.wrap(model)`` with ``setup.shard(data)``.
    """
    backend = keras.backend.backend()
    choices = STRATEGIES.get(backend, ("none",))
    checks.choice(
        "strategy", strategy, ("auto", *choices), where=f"configure (on {backend})"
    )
    model_parallel = checks.integer(
        "model_parallel", model_parallel, minimum=1, where="configure"
    )
    if model_parallel != 1 and strategy not in ("auto", "model_parallel"):
        raise ValueError(
            "configure: `model_parallel` applies to strategy="
            f"'model_parallel' only, got strategy={strategy!r}"
        )
    multi_host = {
        "coordinator_address": coordinator_address,
        "num_processes": num_processes,
        "process_id": process_id,
    }
    if backend != "jax":
        given = [name for name, value in multi_host.items() if value is not None]
        if given:
            raise ValueError(
                f"configure: `{given[0]}` is for JAX multi-host runs; on "
                f"{backend} the processes are set up by "
                + ("TF_CONFIG" if backend == "tensorflow" else "torchrun")
            )
    engine_configure = implementation("distribution", "configure")
    if engine_configure is None:
        if devices is not None:
            raise ValueError(
                f"configure: `devices` is not supported on the {backend} "
                f"backend, got {devices!r}"
            )
        return Setup()
    if backend == "jax":
        return engine_configure(strategy, devices, model_parallel, **multi_host)
    return engine_configure(strategy, devices)


def simulate_cpu_devices(count):
    """Split the CPU into ``count`` devices, to try multi-device runs.

    Must be called before the backend runs its first operation (JAX:
    ``jax_num_cpu_devices``, like ``XLA_FLAGS=
    --xla_force_host_platform_device_count``; TensorFlow: logical CPU
    devices). PyTorch runs one process per device: use
    ``torchrun --nproc_per_node=count`` instead.

    Args:
        count: int >= 1, the number of CPU devices.
    """
    count = checks.integer("count", count, minimum=1, where="simulate_cpu_devices")
    engine_simulate = implementation("distribution", "simulate_cpu_devices")
    if engine_simulate is None:
        raise ValueError(
            "simulate_cpu_devices: not available on the "
            f"{keras.backend.backend()} backend; with PyTorch start "
            f"`torchrun --nproc_per_node={count}` instead"
        )
    engine_simulate(count)


def select_devices(devices, available, example, known_only=True):
    """The names of the devices ``devices`` selects, for the engines.

    Args:
        devices: None (every device), an int (the first ``devices``) or a
            list of device names.
        available: list of str, the backend's device names.
        example: str, a device name to show in the error message.
        known_only: bool, refuse names that are not in ``available``.

    Returns:
        list of str.
    """
    if devices is None:
        return list(available)
    if isinstance(devices, numbers.Integral) and not isinstance(devices, bool):
        count = checks.integer(
            "devices", devices, minimum=1, maximum=len(available), where="configure"
        )
        return list(available[:count])
    if (
        not isinstance(devices, (list, tuple))
        or not devices
        or not all(isinstance(d, str) for d in devices)
    ):
        checks.fail(
            "devices",
            f"None, an int or a list of device names such as {example!r}",
            devices,
            "configure",
        )
    unknown = [d for d in devices if d not in available]
    if known_only and unknown:
        checks.fail("devices", f"names among {available}", devices, "configure")
    return list(devices)


def one_device(devices, names):
    """The ``Setup`` of strategy ``"none"``, for the engines.

    Args:
        devices: the ``devices`` argument of ``configure``.
        names: list of str, the devices it selects.

    Returns:
        A ``Setup``.

    Raises:
        ValueError: ``devices`` selects more than one device.
    """
    if devices is not None and len(names) > 1:
        checks.fail("devices", "one device with strategy='none'", devices, "configure")
    return Setup()
