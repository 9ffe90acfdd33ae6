"""Multi-device and multi-host training on each backend's own engine.

Attention sampling brings no distribution machinery of its own: a model runs
under ``keras.distribution`` on JAX, ``tf.distribute`` on TensorFlow and
``torch.nn.parallel.DistributedDataParallel`` on PyTorch. This package sets
those engines up behind one interface (``setup``: ``configure``, ``Setup``)
and makes data split evenly across devices (``batches``); the
engine-specific code lives in ``ats.backends.<backend>.distribution``,
imported only on its backend.

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
copy of the same seed state, so ``replica_seed`` (``ats.core.seeds``,
re-exported here) folds the replica index into the seed (replica 0 keeps
the seed as is). The same seed and the same number of devices reproduce a
run.
"""

from ..core.seeds import (
    independent_sampling,
    replica_index,
    replica_seed,
    set_independent_sampling,
)
from .batches import (
    EvenBatches,
    batch_multiple,
    drop_remainder,
    even_batches,
    predict,
    shard_examples,
    shard_slice,
)
from .setup import STRATEGIES, Setup, configure, simulate_cpu_devices

__all__ = [
    "STRATEGIES",
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
