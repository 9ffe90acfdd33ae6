"""The Gigapixel MNIST experiment: attention sampling on pyramidal TIFFs.

This is the library behind ``ats gigapixel train`` (see
``docs/gigapixel.md``): Megapixel MNIST's attention-sampling model on the
lazy path (:func:`build_model`), trained on a data set of
:mod:`ats.datasets.gigapixel_mnist` with :mod:`ats.training`'s run
directory, checkpoints, ``--resume``, ``metrics.csv``, report and pictures
(the attention over the low-resolution view, :func:`inspect`).
Positions are sampled inside each training step from the attention of the
weights that step differentiates, and only the sampled patches are read from
the TIFFs.

Example::

    from ats.experiments import gigapixel_mnist as experiment

    results = experiment.train("gigapixel", "runs/gigapixel", epochs=1)
    results["test"]["sampled"]["error"], results["test"]["top_k"]["error"]
"""

import dataclasses

import keras
import numpy as np

from .. import distribute, training
from ..backends.keras_internals import flatten_layers
from ..core import SamplePatches, attention_sampling
from ..core.inspection import inspect_step
from ..datasets.gigapixel_mnist import GigapixelMNIST
from ..lazy import lazy_attention_sampling
from ..models.megapixel_mnist import attention_network, feature_network
from ..training.hyperparameters import hyperparameter
from ..utils.regularizers import MultinomialEntropy
from .megapixel_mnist import NetworkConfig, compile_classifier

__all__ = [
    "TrainConfig",
    "EXPERIMENT",
    "build_model",
    "inspect",
    "train",
    "evaluate_run",
    "draw_pictures",
]


@dataclasses.dataclass(frozen=True)
class TrainConfig(NetworkConfig):
    """The hyper-parameters of a Gigapixel MNIST run (``config.json``).

    Those of Megapixel MNIST's
    :class:`~ats.experiments.megapixel_mnist.NetworkConfig` (with one epoch
    of batches of 4 by default), and:

    Attributes:
        patch_level: the pyramid level patches are read from (0: full
            resolution).
        low_level: the pyramid level of the low-resolution view (None: the
            one about ``base_side / 8`` pixels a side).
    """

    epochs: int = hyperparameter(1, "total epochs", minimum=1)
    batch_size: int = hyperparameter(4, "images per step", minimum=1)
    patch_level: int = hyperparameter(
        0, "pyramid level the patches are read from (0: full resolution)", minimum=0
    )
    low_level: int = hyperparameter(
        None,
        "pyramid level of the low-resolution view (default: the one about "
        "base-side/8 a side)",
        kind="int",
        minimum=0,
        optional=True,
    )


def build_model(
    low_shape,
    n_classes=10,
    n_patches=10,
    patch_size=(50, 50),
    regularizer_strength=1e-4,
    filters=32,
    attention_filters=8,
    attention_prior=0.0,
    seed=None,
    high_shape=None,
    replace=False,
):
    """Megapixel MNIST's attention-sampling model on the lazy path.

    The attention and feature networks of
    :mod:`ats.models.megapixel_mnist`, each after a ``Rescaling(1 / 255)``
    of the uint8 pixels, combined by ``ats.lazy.lazy_attention_sampling``;
    or, given ``high_shape``, the same model on the in-graph path
    (``ats.core.attention_sampling`` on a materialized ``x_high``), to
    compare them.

    Args:
        low_shape: ``(h, w, C)`` of the low-resolution view.
        n_classes: int, the number of classes.
        n_patches: int, patches sampled per image.
        patch_size: ``(height, width)`` of the patches in the patch level.
        regularizer_strength: float, weight of the attention's entropy
            regularizer; 0 disables it.
        filters, attention_filters: int, channels of the feature and the
            attention networks.
        seed: int or None, seed of the patch sampling.
        high_shape: optional ``(H, W, C)``: build the in-graph model.
        replace: bool, sample patches with replacement.

    Returns:
        An uncompiled ``keras.Model`` ``[x_low (B, h, w, C) uint8,
        x_high_ref (B, 3) int32] -> probabilities (B, n_classes)`` (with
        ``high_shape``: ``[x_low, x_high (B, H, W, C) uint8] -> ...``).
    """
    low_shape, patch_size = tuple(low_shape), tuple(patch_size)
    channels = low_shape[-1]
    x_low = keras.Input(low_shape, dtype="uint8", name="x_low")
    if high_shape is None:
        second = keras.Input((3,), dtype="int32", name="x_high_ref")
        sampling = lazy_attention_sampling
    else:
        second = keras.Input(tuple(high_shape), dtype="uint8", name="x_high")
        sampling = attention_sampling
    attention = keras.Sequential(
        [
            keras.Input(low_shape, dtype="uint8"),
            keras.layers.Rescaling(1 / 255),
            attention_network(
                attention_filters, prior_strength=attention_prior, channels=channels
            ),
        ],
        name="scaled_attention",
    )
    feature = keras.Sequential(
        [
            keras.Input((*patch_size, channels), dtype="uint8"),
            keras.layers.Rescaling(1 / 255),
            feature_network(patch_size, filters, channels),
        ],
        name="scaled_feature",
    )
    regularizer = (
        MultinomialEntropy(regularizer_strength) if regularizer_strength else None
    )
    features, _, _ = sampling(
        attention,
        feature,
        patch_size=patch_size,
        n_patches=n_patches,
        replace=replace,
        attention_regularizer=regularizer,
        seed=seed,
    )([x_low, second])
    y = keras.layers.Dense(n_classes, activation="softmax", name="classifier")(features)
    return keras.Model([x_low, second], y, name="gigapixel_ats")


def inspect(model, x_low, x_high_ref, deterministic=False, seed=None):
    """Run a lazy :func:`build_model` step by step: what it looked at.

    Its attention network on ``x_low``, the sampling of ``ats.core.sample``
    (or the top-``n_patches`` positions), the patches read from the sources
    ``x_high_ref`` refers to, its feature network, the expectation and its
    classifier: the probabilities are its prediction from exactly the
    returned patches.

    Args:
        model: a model built by :func:`build_model` (lazy).
        x_low: ``(B, h, w, C)`` uint8 low-resolution views.
        x_high_ref: ``(B, 3)`` references of live sources
            (``PatchSource.reference()``).
        deterministic: bool, take the most attended positions instead of
            sampling.
        seed: int or None, the seed of the sampling.

    Returns:
        A dict of numpy arrays: ``attention`` ``(B, h', w')``, ``corners``
        ``(B, N, 2)`` in the patch level's pixels, ``patches``
        ``(B, N, ph, pw, C)`` in [0, 1], ``sampled_attention`` ``(B, N)``
        and ``probabilities`` ``(B, n_classes)``.
    """
    layers = {layer.name: layer for layer in flatten_layers(model)}
    sampler = next(
        layer for layer in layers.values() if isinstance(layer, SamplePatches)
    )
    seen = inspect_step(
        sampler,
        layers["scaled_attention"],
        layers["scaled_feature"],
        layers["classifier"],
        np.asarray(x_low, dtype="uint8"),
        np.asarray(x_high_ref, dtype="int32"),
        deterministic,
        seed,
    )
    seen["patches"] = seen["patches"].astype("float32") / 255
    seen["probabilities"] = seen.pop("outputs")
    return seen


class Experiment(training.Experiment):
    """Gigapixel MNIST's pieces of a training run."""

    name = "gigapixel_mnist"
    title = "Gigapixel MNIST"
    command = "ats gigapixel train"
    config_class = TrainConfig
    n_classes = 10

    def load_data(self, data_dir):
        return GigapixelMNIST.load(data_dir)

    def labels(self, data, split):
        return data.labels(split)

    def describe_data(self, data):
        config = data.config
        summary = (
            f"{config.side}x{config.side} pyramidal TIFFs ({config.compression} "
            f"tiles of {config.tile}, pyramid levels {config.level_sides}), "
            f"{config.n_train} training and {config.n_test} test images"
        )
        return config.to_dict(), summary

    def check(self, config, data):
        if not data.config.n_train:
            raise ValueError(f"{data.directory}: the data set has no training images")

    def build_model(self, config, data, setup=None):
        source = data.sources(
            "train", config.low_level, config.patch_level, rows=slice(0, 1)
        )[0]
        model = build_model(
            source.low_shape,
            n_patches=config.n_patches,
            patch_size=config.patch_size,
            regularizer_strength=config.regularizer_strength,
            filters=config.filters,
            attention_filters=config.attention_filters,
            attention_prior=config.attention_prior,
            seed=config.seed,
            replace=config.replace,
        )
        if setup is not None:
            model = setup.wrap(model)
        return compile_classifier(model, config)

    def sequence(self, data, split, config, setup=None):
        """The batches of ``split`` this process feeds: under a distribution
        ``setup``, it opens and reads only its block of the images
        (``setup.shard_slice``), in batches of ``setup.local_batch_size``."""
        training_split = split == "train"
        n_images = len(data.files(split))
        if not n_images:
            return None
        rows, batch_size = slice(None), config.batch_size
        if setup is not None:
            rows = setup.shard_slice(n_images, training_split)
            batch_size = setup.local_batch_size(batch_size)
        sequence = data.sequence(
            split,
            batch_size=batch_size,
            patch_size=config.patch_size,
            shuffle=training_split,
            seed=config.seed,
            low_level=config.low_level,
            patch_level=config.patch_level,
            rows=rows,
            workers=config.batch_workers,
        )
        return distribute.even_batches(sequence, training_split)

    def train_images(self, config, data):
        return data.config.n_train

    def pictures(self, run, model, data, config):
        """The attention over the low-resolution views of a few test
        images, with the patches read at the patch level."""
        indices = [i for i in config.picture_images if i < data.config.n_test]
        sources = [
            data.sources(
                "test", config.low_level, config.patch_level, rows=slice(i, i + 1)
            )[0]
            for i in indices
        ]
        if not sources:
            return None
        x_low = np.stack([source.low() for source in sources])

        def look(deterministic):
            # The sources stay open (referenced here) while pictures are drawn.
            x_high_ref = np.stack([source.reference() for source in sources])
            return inspect(model, x_low, x_high_ref, deterministic, config.seed)

        return training.AttentionPictures(
            run,
            look,
            x_low.astype("float32") / 255,
            data.labels("test")[indices],
            extent=sources[0].spatial_shape,
        )


EXPERIMENT = Experiment()
"""The experiment, as :mod:`ats.training`'s functions take it."""

train = EXPERIMENT.train
"""``train(data_dir, run_dir, resume=False, verbose=1, setup=None,
**overrides)``: train :func:`build_model` on a Gigapixel MNIST data set in a
run directory (:func:`ats.training.train`: ``config.json``,
``metrics.csv``, a checkpoint per epoch, ``results.json``, ``report.md`` and
``pictures/``: the attention on test images after every epoch, the
curves). Under a distribution ``setup`` each process opens and reads only
its block of the training images. ``**overrides`` are
:class:`TrainConfig` fields."""

evaluate_run = EXPERIMENT.evaluate_run
"""Evaluate a run's checkpoint again (:func:`ats.training.evaluate_run`)."""

draw_pictures = EXPERIMENT.draw_pictures
"""Draw a run's pictures again (:func:`ats.training.draw_pictures`)."""
