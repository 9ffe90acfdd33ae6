"""Train and sample an attention-sampling model on two devices; write JSON.

Run by ``tests/distribute/test_distributed.py`` in a process of its own, because each
engine's devices must be set up before its backend starts:

    KERAS_BACKEND=jax python tests/distribute/scenario.py OUT.json
    KERAS_BACKEND=tensorflow python tests/distribute/scenario.py OUT.json
    KERAS_BACKEND=torch torchrun --standalone --nproc_per_node=2 \\
        tests/distribute/scenario.py OUT.json

JAX and TensorFlow split the CPU into two devices; PyTorch runs two gloo
processes. Every check compares the two-device run with one device in the
same process (on PyTorch: process 0, outside DDP).
"""

import json
import sys
from pathlib import Path

import keras
import numpy as np
from keras import layers

import ats.distribute as distribute
from ats.core import SamplePatches, attention_sampling
from ats.utils.layers import L2Normalize, SampleSoftmax
from ats.utils.regularizers import MultinomialEntropy

BACKEND = keras.backend.backend()

LOW, HIGH, PATCH, N_PATCHES = (16, 16), (64, 64), (8, 8), 4
GLOBAL_BATCH = 8
SEED = 7


def build(deterministic=False, seed=SEED):
    """``(classifier, sampler)`` sharing one attention-sampling model."""
    keras.utils.set_random_seed(0)
    x_low, x_high = keras.Input((*LOW, 1)), keras.Input((*HIGH, 1))
    attention = keras.Sequential(
        [
            layers.Conv2D(4, 3, padding="same", activation="tanh"),
            layers.Conv2D(1, 3, padding="same"),
            SampleSoftmax(squeeze_channels=True, smooth=1e-4),
        ]
    )
    feature = keras.Sequential(
        [
            keras.Input((*PATCH, 1)),
            layers.Conv2D(8, 3, activation="relu"),
            layers.GlobalMaxPooling2D(),
            L2Normalize(),
        ]
    )
    features, _, patches = attention_sampling(
        attention,
        feature,
        n_patches=N_PATCHES,
        attention_regularizer=MultinomialEntropy(1e-3),
        seed=seed,
    )([x_low, x_high])
    y = layers.Dense(2, activation="softmax")(features)
    classifier = keras.Model([x_low, x_high], y)
    for layer in classifier.layers:
        if isinstance(layer, SamplePatches):
            layer.deterministic = deterministic
    return classifier, keras.Model([x_low, x_high], patches)


def toy_data(n, seed=0):
    """Noise (class 0) or noise over vertical stripes (class 1).

    Every patch shows its image's class, so a few steps reduce the loss.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n).astype("int32")
    x_high = rng.random((n, *HIGH, 1)).astype("float32") * 0.5
    x_high[y == 1, :, ::2] += 0.5
    x_low = x_high.reshape(n, LOW[0], 4, LOW[1], 4, 1).mean(axis=(2, 4))
    return [x_low, x_high], y


def coordinate_images(n):
    """``n`` copies of one image whose pixel values encode their position.

    The low-resolution view is blank, so the attention is uniform and every
    draw is as random as it can be.
    """
    rows, cols = np.meshgrid(np.arange(HIGH[0]), np.arange(HIGH[1]), indexing="ij")
    code = ((rows * HIGH[1] + cols) / (HIGH[0] * HIGH[1])).astype("float32")
    x_high = np.broadcast_to(code[None, :, :, None], (n, *HIGH, 1)).copy()
    return [np.zeros((n, *LOW, 1), "float32"), x_high]


def positions(patches):
    """The pixel each patch is centred on, decoded from coordinate images."""
    centre = np.asarray(patches)[:, :, PATCH[0] // 2, PATCH[1] // 2, 0]
    return np.rint(centre * HIGH[0] * HIGH[1]).astype(int)


def weights(model):
    return [np.array(w) for w in model.get_weights()]


def max_abs_diff(a, b):
    return float(max(np.abs(x - y).max() for x, y in zip(a, b)))


def replica_weight_diff(setup, model):
    """Largest difference of a weight between two replicas' copies."""
    if BACKEND == "jax":
        copies = [
            [np.asarray(s.data) for s in v.value.addressable_shards]
            for v in model.weights
        ]
        return float(max(np.abs(c[0] - c[-1]).max() for c in copies))
    if BACKEND == "tensorflow":
        copies = [
            setup.engine.experimental_local_results(v.value) for v in model.weights
        ]
        return float(max(np.abs(c[0].numpy() - c[-1].numpy()).max() for c in copies))
    return max_abs_diff(*gather(weights(model)))


def gather(value):
    """Every process's ``value`` (PyTorch), or ``[value]``."""
    if BACKEND != "torch":
        return [value]
    import torch.distributed as dist

    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def by_replica(setup, sampler, x):
    """Per-replica positions for one global batch ``x``: ``(r, B / r, N)``.

    Keras concatenates the replicas' predictions in replica order (JAX: the
    devices' shards of the batch axis); PyTorch processes predict their own
    block of the batch.
    """
    local = distribute.predict(
        sampler, setup.shard(x), batch_size=local_batch(setup), verbose=0
    )
    per_process = gather(positions(local))
    return np.concatenate(per_process).reshape(setup.num_replicas, -1, N_PATCHES)


def local_batch(setup):
    """The batch size each process feeds for a global batch of 8."""
    return setup.local_batch_size(GLOBAL_BATCH)


def train(setup, x, y):
    """A few steps with sampling on, on one global batch."""
    with setup.scope():
        classifier, _ = build()
        model = setup.wrap(classifier)
        model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
        history = model.fit(
            *setup.shard((x, y)),
            batch_size=local_batch(setup),
            epochs=6,
            shuffle=False,
            verbose=0,
        )
        # PyTorch logs are each process's: their mean is the global loss.
        return {
            "train_losses": np.mean(gather(history.history["loss"]), axis=0).tolist(),
            "replica_weight_diff": replica_weight_diff(setup, setup.unwrap(model)),
        }


class Batches(keras.utils.PyDataset):
    """Batches ``((x_low, x_high), y)`` of arrays, the last one partial."""

    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.y) // self.batch_size)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return tuple(a[part] for a in self.x), self.y[part]


def one_step_and_uneven_sizes(setup, x, y):
    """One SGD step with the positions held fixed, against one device.

    The sampled positions are held fixed by deterministic top-k sampling;
    with a learning rate of 1 the update is minus the gradient. Then uneven
    sizes: 13 examples in batches of 8 to ``fit`` (dropped to a multiple of
    the devices) and ``evaluate`` (padded), and predictions for 7 examples.
    """
    initial = weights(build(deterministic=True)[0])
    x13, y13 = toy_data(13, seed=1)
    local = setup.shard((x13, y13))
    with setup.scope():
        classifier, _ = build(deterministic=True)
        classifier.set_weights(initial)
        model = setup.wrap(classifier)
        model.compile(keras.optimizers.SGD(1.0), "sparse_categorical_crossentropy")
        model.fit(
            *setup.shard((x, y)),
            batch_size=local_batch(setup),
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        stepped = weights(setup.unwrap(model))
        # A learning rate of 0 keeps the weights for what follows; padded
        # examples have weight 0, which only weighted metrics take.
        model.compile(
            keras.optimizers.SGD(0.0),
            "sparse_categorical_crossentropy",
            weighted_metrics=["accuracy"],
        )
        uneven = model.fit(
            distribute.EvenBatches(Batches(*local, local_batch(setup))),
            epochs=1,
            verbose=0,
        )
        accuracy = model.evaluate(
            distribute.EvenBatches(
                Batches(*local, local_batch(setup)), remainder="pad"
            ),
            verbose=0,
            return_dict=True,
        )["accuracy"]
        predicted = distribute.predict(
            model, [a[:7] for a in x13], batch_size=local_batch(setup), verbose=0
        )
    accuracy = float(np.mean(gather(accuracy)))  # equal shards
    if setup.process_index != 0:
        return {}
    reference, _ = build(deterministic=True)
    reference.set_weights(initial)
    reference.compile(
        keras.optimizers.SGD(1.0),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    reference.fit(x, y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0)
    seen = len(y13) // setup.num_processes * setup.num_processes
    expected_accuracy = reference.evaluate(
        [a[:seen] for a in x13], y13[:seen], verbose=0, return_dict=True
    )["accuracy"]
    expected = reference.predict([a[:7] for a in x13], verbose=0)
    return {
        "gradients": {
            "max_abs_diff": max_abs_diff(stepped, weights(reference)),
            "max_abs": max_abs_diff(initial, weights(reference)),
        },
        "uneven": {
            "fit_losses": uneven.history["loss"],
            "accuracy": accuracy,
            "expected_accuracy": expected_accuracy,
            "predict_shape": list(np.shape(predicted)),
            "predict_max_abs_diff": float(np.abs(predicted - expected).max()),
        },
    }


def sample_positions(setup):
    """Positions drawn for the same image in every example, per replica."""
    images = coordinate_images(GLOBAL_BATCH)
    with setup.scope():
        _, sampler = build()
        first = by_replica(setup, setup.wrap(sampler), images)
        _, sampler = build()
        again = by_replica(setup, setup.wrap(sampler), images)
    samples = {"positions": first.tolist(), "again": again.tolist()}
    if BACKEND == "jax":
        _, sampler = build()
        samples["one_device"] = positions(sampler.predict(images, verbose=0)).tolist()
    else:
        distribute.set_independent_sampling(False)
        with setup.scope():
            _, sampler = build()
            samples["replicated"] = by_replica(
                setup, setup.wrap(sampler), images
            ).tolist()
        distribute.set_independent_sampling(True)
    return {"samples": samples}


def model_parallel(x, y):
    """JAX: a (batch 1, model 2) mesh with output channels sharded."""
    setup = distribute.configure("model_parallel", model_parallel=2)
    with setup.scope():
        classifier, _ = build()
        classifier.compile(
            keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy"
        )
        history = classifier.fit(x, y, batch_size=GLOBAL_BATCH, epochs=2, verbose=0)
        sharded = sorted(
            v.path
            for v in classifier.weights
            if not v.value.sharding.is_fully_replicated
        )
    return {"model_parallel": {"losses": history.history["loss"], "sharded": sharded}}


def training_commands(setup, workdir):
    """``ats mnist train`` (and a resume) and the lazy gigapixel training.

    Process 0 writes the data sets; every process trains. The lazy path
    reports the training images each process opened and read patches of.
    """
    import ats.cli
    from ats.datasets import gigapixel_mnist
    from ats.experiments import megapixel_mnist

    mnist, gigapixel = workdir / "mnist", workdir / "gigapixel"
    if setup.process_index == 0:
        megapixel_mnist.make_data(
            "quick",
            mnist,
            progress=False,
            width=100,
            height=100,
            scale=0.25,
            noise=False,
            n_train=32,
            n_test=11,
            seed=1,
        )
        gigapixel_mnist.GigapixelMNIST.write(
            gigapixel,
            gigapixel_mnist.GigapixelMNISTConfig(
                side=600,
                base_side=300,
                n_train=8,
                n_test=3,
                n_noise=5,
                tile=128,
                seed=2,
            ),
            progress=False,
        )
    setup.barrier()
    run = workdir / "mnist-run"
    options = ["--distribute", "auto", "--quiet"]
    status = [
        ats.cli.main(
            [
                "mnist",
                "train",
                "--data",
                str(mnist),
                "--run-dir",
                str(run),
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--n-patches",
                "2",
                "--patch-size",
                "30x30",
                "--filters",
                "4",
                *options,
            ]
        ),
        ats.cli.main(
            [
                "mnist",
                "train",
                "--run-dir",
                str(run),
                "--resume",
                "--epochs",
                "2",
                *options,
            ]
        ),
    ]
    from ats.data.sources import get_source
    from ats.experiments import gigapixel_mnist as gigapixel_experiment
    from ats.lazy import from_sources

    read_patches, read_sizes, train_files = from_sources.read_patches, [], set()

    def recording_read(x_high_ref, *args):
        read_sizes.append(len(x_high_ref))
        for row in x_high_ref:
            name = get_source(row[0]).name
            if Path(name).parent.name == "train":
                train_files.add(name)
        return read_patches(x_high_ref, *args)

    from_sources.read_patches = recording_read
    try:
        lazy = gigapixel_experiment.train(
            gigapixel,
            workdir / "gigapixel-run",
            verbose=0,
            setup=setup,
            batch_size=4,
            n_patches=2,
            patch_size=(30, 30),
            # The pictures read their images eagerly, in one call: two of
            # them, so that a step's unsplit global batch of 4 still shows.
            picture_images=(0, 1),
        )
    finally:
        from_sources.read_patches = read_patches
    result = {
        "exit_status": gather(status),
        "lazy_images": gather(len(train_files)),
        "lazy_read_sizes": sorted(set(sum(gather(read_sizes), []))),
        "lazy": lazy,
    }
    if setup.process_index == 0:
        result["mnist"] = json.loads((run / "results.json").read_text())
        result["mnist_config"] = json.loads((run / "config.json").read_text())
    return result


def main(out):
    if BACKEND != "torch":
        distribute.simulate_cpu_devices(2)
    setup = distribute.configure("auto")
    x, y = toy_data(GLOBAL_BATCH)
    result = {
        "backend": BACKEND,
        "strategy": setup.strategy,
        "num_replicas": setup.num_replicas,
    }
    result.update(train(setup, x, y))
    result.update(one_step_and_uneven_sizes(setup, x, y))
    result.update(sample_positions(setup))
    if BACKEND == "jax":
        result.update(model_parallel(x, y))
    result["commands"] = training_commands(setup, Path(out).parent)
    if setup.process_index == 0:
        with open(out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
