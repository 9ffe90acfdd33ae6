"""PyTorch: ``torch.nn.parallel.DistributedDataParallel`` under torchrun.

On the torch backend Keras layers and models are ``torch.nn.Module``s, so
DDP wraps an attention-sampling model as it is.
``DistributedDataParallelModel`` keeps it a ``keras.Model`` whose training
forward pass goes through DDP, so ``compile``/``fit`` synchronize gradients
across processes.

Found by ``ats.distribute`` through ``ats.backends.implementation``.
"""

import os

import keras
import torch
import torch.distributed as dist

from ...distribute.setup import Setup

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class _KerasModule(torch.nn.Module):
    """What DDP wraps: a Keras model with its variables in Keras' order.

    A Keras model lists its torch parameters sorted by variable path, and
    paths hold layer names that Keras numbers per process (``conv2d_7``), so
    two processes that built other models before may list them in
    different orders. DDP matches parameters across processes by order;
    ``model.variables`` is in build order, the same in every process.
    """

    def __init__(self, model):
        super().__init__()
        # Not a submodule: DDP must see only `variables`.
        object.__setattr__(self, "model", model)
        self.variables = torch.nn.ParameterList(
            [variable.value for variable in model.variables]
        )

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)


class DistributedDataParallelModel(keras.Model):
    """A Keras model whose training forward pass runs through DDP.

    ``fit`` (``train_step`` calls the model with ``training=True``) goes
    through ``torch.nn.parallel.DistributedDataParallel``, which averages the
    gradients of every process during ``backward``; inference
    (``evaluate``, ``predict``) calls the model directly. Each process feeds
    its own batches (``TorchSetup.shard``); logs and metrics are those of the
    process. Save ``.module``, the wrapped model.

    Args:
        module: a built ``keras.Model`` (every process gets process 0's
            weights).
        **ddp_kwargs: passed to ``DistributedDataParallel`` (e.g.
            ``find_unused_parameters=True``).
    """

    def __init__(self, module, **ddp_kwargs):
        super().__init__(name=f"ddp_{module.name}")
        if not module.built:
            raise ValueError(
                "DistributedDataParallelModel: `module` must be built (e.g. "
                f"a functional model, or called once), got {module.name!r}"
            )
        self.module = module
        if torch.cuda.is_available():
            ddp_kwargs.setdefault("device_ids", [torch.cuda.current_device()])
        # Stored outside Keras' and torch's attribute tracking: the DDP
        # module holds the same parameters as `module`.
        object.__setattr__(
            self,
            "_ddp",
            torch.nn.parallel.DistributedDataParallel(
                _KerasModule(module), **ddp_kwargs
            ),
        )

    def call(self, inputs, training=None):
        if training:
            return self._ddp(inputs, training=True)
        return self.module(inputs, training=training)


class TorchSetup(Setup):
    """One torchrun process of a DDP run (process group initialized).

    Each process trains on its own block of the data (``shard``) and
    evaluates all of it (``shard(data, training=False)``): DDP averages
    gradients only, and Keras' metrics are per process.
    """

    strategy = "ddp"
    shards_data = True
    shards_evaluation = False

    def __init__(self):
        self.num_replicas = self.num_processes = dist.get_world_size()
        self.process_index = dist.get_rank()

    def wrap(self, model, **ddp_kwargs):
        """``DistributedDataParallelModel(model)``: compile and fit it.

        Args:
            model: a ``keras.Model`` with its weights (every process gets
                process 0's weights).
            **ddp_kwargs: passed to ``DistributedDataParallel``.

        Returns:
            A ``DistributedDataParallelModel``.
        """
        return DistributedDataParallelModel(model, **ddp_kwargs)

    def barrier(self):
        """``torch.distributed.barrier()``."""
        dist.barrier()

    def unwrap(self, model):
        """The wrapped model (to save it, e.g. on process 0).

        Args:
            model: a ``DistributedDataParallelModel``.

        Returns:
            ``model.module``.
        """
        return (
            model.module if isinstance(model, DistributedDataParallelModel) else model
        )


def init_process_group(backend=None):
    """Join the process group that torchrun describes in the environment.

    Uses NCCL with one GPU per process (``LOCAL_RANK``) when CUDA is
    available, gloo on CPU otherwise. Does nothing if already initialized.

    Args:
        backend: str or None, the ``torch.distributed`` backend to force.
    """
    if dist.is_initialized():
        return
    missing = [name for name in _TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise RuntimeError(
            "configure(strategy='ddp') must run in a process started by "
            f"torchrun (missing environment variables {missing}), e.g. "
            "`torchrun --nproc_per_node=2 train.py`"
        )
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(
        backend or ("nccl" if torch.cuda.is_available() else "gloo")
    )


def configure(strategy, devices):
    """``ats.distribute.configure`` on PyTorch (arguments validated there).

    Args:
        strategy: str, ``"auto"`` (``"ddp"`` under torchrun with more than
            one process), ``"none"`` or ``"ddp"``.
        devices: must be None: each process uses one device (its
            ``LOCAL_RANK``-th GPU, or the CPU).

    Returns:
        A ``Setup`` (``TorchSetup`` for ``"ddp"``).
    """
    if devices is not None:
        raise ValueError(
            "configure: `devices` is not supported on PyTorch, which runs "
            "one process per device: start `torchrun --nproc_per_node=N`, "
            f"got devices={devices!r}"
        )
    if strategy == "auto":
        strategy = "ddp" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else "none"
    if strategy == "none":
        return Setup()
    init_process_group()
    return TorchSetup()
