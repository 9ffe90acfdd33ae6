"""TensorFlow: ``tf.distribute`` (``MirroredStrategy``, multi-worker).

Found by ``ats.distribute`` through ``ats.backends.implementation``.
"""

import json
import os

import tensorflow as tf

from ...distribute.setup import Setup, one_device, select_devices


class TensorFlowSetup(Setup):
    """A ``tf.distribute.Strategy`` entered in ``scope()``.

    Build and compile the model in ``scope()``; Keras then runs ``fit``,
    ``evaluate`` and ``predict`` on every replica, splitting each global
    batch (uneven last batches included). Under ``MultiWorkerMirroredStrategy``
    every worker passes the whole data and ``tf.distribute`` shards it.

    Args:
        strategy: str, ``"mirrored"`` or ``"multi_worker_mirrored"``.
        tf_strategy: the ``tf.distribute.Strategy``.
    """

    def __init__(self, strategy, tf_strategy):
        self.strategy = strategy
        self.engine = tf_strategy
        self.num_replicas = tf_strategy.num_replicas_in_sync
        resolver = getattr(tf_strategy, "cluster_resolver", None)
        if resolver is not None and resolver.task_type is not None:
            self.num_processes = len(
                resolver.cluster_spec().as_dict().get("worker", [None])
            )
            self.process_index = int(resolver.task_id)

    def barrier(self):
        """An all-reduce across the workers (``MultiWorkerMirroredStrategy``)."""
        if self.num_processes > 1:
            self.engine.reduce(
                tf.distribute.ReduceOp.SUM,
                self.engine.run(lambda: tf.constant(1)),
                axis=None,
            )

    def scope(self):
        """``strategy.scope()``.

        Returns:
            A context manager.
        """
        return self.engine.scope()


def _devices(devices):
    available = [
        d.name
        for d in (
            tf.config.list_logical_devices("GPU")
            or tf.config.list_logical_devices("CPU")
        )
    ]
    return select_devices(devices, available, "/gpu:0", known_only=False)


def configure(strategy, devices):
    """``ats.distribute.configure`` on TensorFlow (arguments validated there).

    Args:
        strategy: str, ``"auto"``, ``"none"``, ``"mirrored"`` or
            ``"multi_worker_mirrored"`` (reads ``TF_CONFIG``).
        devices: None, int or list of device names (the GPUs, or the logical
            CPUs when there is no GPU); not for ``"multi_worker_mirrored"``,
            which uses every local GPU.

    Returns:
        A ``Setup`` (``TensorFlowSetup`` unless the strategy is ``"none"``).
    """
    if (
        strategy == "auto"
        and "TF_CONFIG" in os.environ
        and json.loads(os.environ["TF_CONFIG"]).get("cluster")
    ):
        strategy = "multi_worker_mirrored"
    if strategy == "multi_worker_mirrored":
        if devices is not None:
            raise ValueError(
                "configure: `devices` is not supported with "
                "strategy='multi_worker_mirrored' (it uses every local GPU)"
            )
        return TensorFlowSetup(
            strategy, _strategy(tf.distribute.MultiWorkerMirroredStrategy)
        )
    names = _devices(devices)
    if strategy == "auto":
        strategy = "mirrored" if len(names) > 1 else "none"
    if strategy == "none":
        return one_device(devices, names)
    return TensorFlowSetup(
        strategy, _strategy(tf.distribute.MirroredStrategy, tuple(names))
    )


# One strategy per kind and devices in a process: the collective ops of a
# second MirroredStrategy over the same devices reuse the first one's
# instance keys, and its all-reduces then fail with shape mismatches.
_STRATEGIES = {}


def _strategy(kind, devices=None):
    """The process's ``kind(devices=...)`` strategy, made once."""
    key = (kind, devices)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = kind() if devices is None else kind(devices=list(devices))
    return _STRATEGIES[key]


def simulate_cpu_devices(count):
    """Split the host CPU into ``count`` logical devices (before TF starts).

    Args:
        count: int >= 1.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError as error:
        raise RuntimeError(
            "simulate_cpu_devices must be called before TensorFlow runs its "
            "first operation"
        ) from error


def batch_multiple():
    """The replicas of the current strategy that every batch is split across.

    A batch smaller than that leaves a replica without examples, whose loss
    is undefined.

    Returns:
        int, 1 outside a strategy's scope.
    """
    return tf.distribute.get_strategy().num_replicas_in_sync
