"""Multi-device and multi-host training on each backend's own engine.

Attention sampling brings no distribution machinery of its own: a model runs
under ``keras.distribution`` on JAX, ``tf.distribute`` on TensorFlow and
``torch.nn.parallel.DistributedDataParallel`` on PyTorch. This package sets
those engines up behind one interface and keeps sampling correct across
devices; the engine-specific code lives in one module per engine
(``jax_engine``, ``tensorflow_engine``, ``torch_engine``), imported only on
its backend.

Typical use (see ``docs/distributed.md``)::

    setup = ats.distribute.configure("auto")
    with setup.scope():
        model = setup.wrap(build_model())
        model.compile(...)
        x, y = ats.distribute.drop_remainder(setup.shard((x, y)))
        model.fit(x, y, batch_size=32)
        y_pred = ats.distribute.predict(model, x_test, batch_size=32)
    setup.unwrap(model).save("model.keras")

Sampling across devices: every replica draws its own positions. On JAX the
program is one SPMD computation over the global batch, so each example's
draw is already its own (and a run draws the same positions whatever the
device count). On TensorFlow and PyTorch every replica runs the model with a
copy of the same seed state, so ``replica_seed`` folds the replica index
into the seed (replica 0 keeps the seed as is). The same seed and the same
number of devices reproduce a run.
"""

import contextlib

import keras
import numpy as np

__all__ = [
    "EvenBatches",
    "Setup",
    "batch_multiple",
    "configure",
    "drop_remainder",
    "even_batches",
    "independent_sampling",
    "predict",
    "replica_index",
    "replica_seed",
    "set_independent_sampling",
    "shard_examples",
    "shard_slice",
    "simulate_cpu_devices",
]

# Strategy names accepted by `configure`, per backend.
STRATEGIES = {
    "jax": ("none", "data_parallel", "model_parallel"),
    "tensorflow": ("none", "mirrored", "multi_worker_mirrored"),
    "torch": ("none", "ddp"),
}

# Odd multiplier (2**32 / golden ratio) spreading replica indices over the
# 31-bit range of seeds; replica 0 maps to 0, i.e. keeps its seed.
_REPLICA_SEED_STRIDE = 0x9E3779B1
_SEED_RANGE = 2**31

_independent_sampling = True


def _engine():
    """The engine module of the active backend, or None (e.g. numpy)."""
    backend = keras.backend.backend()
    if backend == "jax":
        from . import jax_engine

        return jax_engine
    if backend == "tensorflow":
        from . import tensorflow_engine

        return tensorflow_engine
    if backend == "torch":
        from . import torch_engine

        return torch_engine
    return None


class Setup:
    """What ``configure`` set up: one process on its default device.

    The engine modules subclass it; every method has the single-device
    meaning here (no scope, no wrapping, the whole data).

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
        n = _leading_length(data, "data", "shard")
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
      ``(batch, model)`` mesh; see ``jax_engine.channel_parallel``).
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
    if not isinstance(strategy, str) or strategy not in ("auto", *choices):
        raise ValueError(
            f"configure: `strategy` must be one of {('auto', *choices)} on "
            f"the {backend} backend, got {strategy!r}"
        )
    if (
        isinstance(model_parallel, bool)
        or not isinstance(model_parallel, int)
        or model_parallel < 1
    ):
        raise ValueError(
            "configure: `model_parallel` must be a positive int, got "
            f"{model_parallel!r}"
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
    engine = _engine()
    if engine is None:
        if devices is not None:
            raise ValueError(
                f"configure: `devices` is not supported on the {backend} "
                f"backend, got {devices!r}"
            )
        return Setup()
    if backend == "jax":
        return engine.configure(strategy, devices, model_parallel, **multi_host)
    return engine.configure(strategy, devices)


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
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(
            f"simulate_cpu_devices: `count` must be a positive int, got {count!r}"
        )
    engine = _engine()
    if engine is None or not hasattr(engine, "simulate_cpu_devices"):
        raise ValueError(
            "simulate_cpu_devices: not available on the "
            f"{keras.backend.backend()} backend; with PyTorch start "
            f"`torchrun --nproc_per_node={count}` instead"
        )
    engine.simulate_cpu_devices(count)


def replica_index():
    """The index of the replica running the current computation.

    Returns:
        0 when not distributed and on JAX (one SPMD program over the global
        batch); the replica id (a scalar tensor inside a replica function)
        under ``tf.distribute``; the process rank under
        ``torch.distributed``.
    """
    engine = _engine()
    return 0 if engine is None else engine.replica_index()


def set_independent_sampling(enabled):
    """Choose whether replicas draw independent positions (the default).

    With ``False`` every replica draws with the same seed, so replicas that
    see the same data sample the same positions (e.g. to debug). JAX draws
    once over the global batch and cannot replicate samples.

    Args:
        enabled: bool.
    """
    global _independent_sampling
    if not isinstance(enabled, bool):
        raise TypeError(
            f"set_independent_sampling: `enabled` must be a bool, got {enabled!r}"
        )
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
    """
    if not (
        seed is None
        or isinstance(seed, keras.random.SeedGenerator)
        or (isinstance(seed, int) and not isinstance(seed, bool))
    ):
        raise TypeError(
            "replica_seed: `seed` must be an int, a keras.random."
            f"SeedGenerator or None, got {type(seed).__name__}"
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


def batch_multiple():
    """The number every per-process batch size must be a multiple of.

    Returns:
        int: on JAX under a ``keras.distribution`` the number of this
        process's devices the batch axis is split across; in a
        ``tf.distribute`` strategy's scope its number of replicas (a batch
        smaller than that leaves a replica without examples); otherwise 1
        (under PyTorch DDP each process feeds its own batches).
    """
    engine = _engine()
    if engine is None or not hasattr(engine, "batch_multiple"):
        return 1
    return engine.batch_multiple()


def _leading_length(data, name, caller):
    leaves = keras.tree.flatten(data)
    if not leaves:
        raise ValueError(f"{caller}: `{name}` holds no arrays")
    lengths = {int(np.shape(leaf)[0]) for leaf in leaves}
    if len(lengths) != 1:
        raise ValueError(
            f"{caller}: the arrays of `{name}` must have the same number of "
            f"examples (first axis), got {sorted(lengths)}"
        )
    return lengths.pop()


def shard_slice(n, index, count):
    """Block ``index`` of ``count`` equal blocks of ``range(n)``, as a slice.

    Args:
        n: int, the number of examples.
        index: int, the block (a process index).
        count: int, the number of blocks (of processes); the last ``n %
            count`` examples belong to none.

    Returns:
        ``slice(index * (n // count), (index + 1) * (n // count))``.
    """
    size = n // count
    if size == 0:
        raise ValueError(f"shard: {n} examples are fewer than the processes ({count})")
    return slice(index * size, (index + 1) * size)


def shard_examples(data, index, count):
    """Block ``index`` of ``count`` equal blocks of the examples of ``data``.

    Args:
        data: array or nested structure (tuple, list, dict) of arrays with
            the examples on their first axis.
        index: int, the block to return (a process index).
        count: int, the number of blocks (of processes); the last ``n %
            count`` examples belong to none.

    Returns:
        The same structure with ``n // count`` examples.
    """
    if count == 1:
        return data
    rows = shard_slice(_leading_length(data, "data", "shard"), index, count)
    return keras.tree.map_structure(lambda a: a[rows], data)


def drop_remainder(data, multiple=None):
    """Drop the last examples so that their number is a multiple.

    With a batch size that is a multiple of ``multiple`` every batch of
    ``fit`` then splits evenly across the devices, the last partial one
    included; fewer than ``multiple`` examples are dropped (always the last
    ones: shuffle the arrays once beforehand if their order is not random).

    Args:
        data: array or nested structure (tuple, list, dict) of arrays with
            the examples on their first axis.
        multiple: int, defaults to ``batch_multiple()``.

    Returns:
        The same structure with ``n - n % multiple`` examples.
    """
    multiple = batch_multiple() if multiple is None else multiple
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ValueError(
            f"drop_remainder: `multiple` must be a positive int, got {multiple!r}"
        )
    n = _leading_length(data, "data", "drop_remainder")
    kept = n - n % multiple
    if kept == 0:
        raise ValueError(
            f"drop_remainder: `data` has {n} examples, fewer than the "
            f"{multiple} devices a batch is split across"
        )
    return keras.tree.map_structure(lambda a: a[:kept], data)


class EvenBatches(keras.utils.PyDataset):
    """A ``PyDataset`` whose batches split evenly across the devices.

    Wraps a ``keras.utils.PyDataset`` of batches ``(x, y)`` or ``(x, y,
    sample_weight)`` (any structure of arrays, examples first) and makes the
    size of each batch a multiple of ``multiple``:

    - ``remainder="drop"`` (training): drop the last ``size % multiple``
      examples of each batch, and the last batch altogether if it has fewer
      than ``multiple`` (checked by loading it once here).
    - ``remainder="pad"`` (evaluation): repeat the last example of each
      batch up to a multiple, with sample weight 0, so metrics and the sum of
      the compiled loss ignore the copies (Keras' ``"sum_over_batch_size"``
      loss still divides by the padded size: a padded batch's loss reads
      smaller by ``size / padded size``).

    ``workers``, ``use_multiprocessing``, ``max_queue_size`` and the epoch
    hooks are those of ``dataset``.

    Args:
        dataset: a ``keras.utils.PyDataset``.
        multiple: int, defaults to ``batch_multiple()`` (so make it in the
            ``Setup.scope()``).
        remainder: ``"drop"`` or ``"pad"``.
    """

    def __init__(self, dataset, multiple=None, remainder="drop"):
        if not isinstance(dataset, keras.utils.PyDataset):
            raise TypeError(
                "EvenBatches: `dataset` must be a keras.utils.PyDataset, got "
                f"{type(dataset).__name__}"
            )
        multiple = batch_multiple() if multiple is None else multiple
        if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
            raise ValueError(
                f"EvenBatches: `multiple` must be a positive int, got {multiple!r}"
            )
        if remainder not in ("drop", "pad"):
            raise ValueError(
                f"EvenBatches: `remainder` must be 'drop' or 'pad', got {remainder!r}"
            )
        super().__init__(
            workers=dataset.workers,
            use_multiprocessing=dataset.use_multiprocessing,
            max_queue_size=dataset.max_queue_size,
        )
        self.dataset, self.multiple, self.remainder = dataset, multiple, remainder
        self._length = len(dataset)
        if (
            remainder == "drop"
            and self._length
            and _leading_length(dataset[self._length - 1], "dataset", "EvenBatches")
            < multiple
        ):
            self._length -= 1

    def __len__(self):
        return self._length

    def __getitem__(self, index):
        if not 0 <= index < self._length:
            raise IndexError(
                f"EvenBatches: batch index {index} out of range "
                f"for {self._length} batches"
            )
        batch = self.dataset[index]
        if not isinstance(batch, tuple) or not 2 <= len(batch) <= 3:
            raise ValueError(
                "EvenBatches: batches must be (x, y) or (x, y, "
                f"sample_weight), got a {type(batch).__name__} of "
                f"{len(batch) if isinstance(batch, tuple) else 1}"
            )
        size = _leading_length(batch, "dataset", "EvenBatches")
        if self.remainder == "drop":
            kept = size - size % self.multiple
            return keras.tree.map_structure(lambda a: a[:kept], batch)
        padding = -size % self.multiple
        weights = np.concatenate(
            [
                np.asarray(batch[2], "float32")
                if len(batch) == 3
                else np.ones(size, "float32"),
                np.zeros(padding, "float32"),
            ]
        )

        def pad(a):
            a = np.asarray(a)
            return np.concatenate([a, np.repeat(a[-1:], padding, axis=0)])

        x, y = keras.tree.map_structure(pad, batch[:2])
        return x, y, weights

    def on_epoch_begin(self):
        self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


def even_batches(dataset, training=True):
    """``dataset`` with batches that split evenly across the devices.

    Args:
        dataset: a ``keras.utils.PyDataset`` of ``(x, y)`` batches.
        training: bool; True drops the remainder of each batch, False pads
            it with weight-0 copies (see ``EvenBatches``).

    Returns:
        ``dataset`` itself when ``batch_multiple()`` is 1, else an
        ``EvenBatches`` over it.
    """
    multiple = batch_multiple()
    if multiple == 1:
        return dataset
    return EvenBatches(dataset, multiple, "drop" if training else "pad")


def predict(model, x, batch_size=32, **kwargs):
    """``model.predict`` on any number of examples under any engine.

    The examples are padded with copies of the last one up to a multiple of
    ``batch_multiple()`` (so that every device gets examples, as JAX
    requires), and the padding is removed from the predictions.

    Args:
        model: a ``keras.Model`` (e.g. ``setup.wrap(model)``).
        x: array or nested structure of arrays, the inputs.
        batch_size: int, a multiple of ``batch_multiple()``.
        **kwargs: passed to ``model.predict`` (e.g. ``verbose``).

    Returns:
        The predictions for the ``len(x)`` examples, as ``model.predict``
        returns them.
    """
    multiple = batch_multiple()
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size < 1
        or batch_size % multiple
    ):
        raise ValueError(
            "predict: `batch_size` must be a positive multiple of the "
            f"number of devices a batch is split across ({multiple}), got "
            f"{batch_size!r}"
        )
    n = _leading_length(x, "x", "predict")
    padding = -n % multiple

    def pad(a):
        a = np.asarray(a)
        return np.concatenate([a, np.repeat(a[-1:], padding, axis=0)])

    if padding:
        x = keras.tree.map_structure(pad, x)
    predictions = model.predict(x, batch_size=batch_size, **kwargs)
    return keras.tree.map_structure(lambda p: p[:n], predictions)
