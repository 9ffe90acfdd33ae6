"""The Megapixel MNIST experiment: presets, data, models, training.

This is the library behind ``ats mnist ...`` (see ``docs/megapixel_mnist.md``);
the generic steps of a run are :mod:`ats.training`'s, this module gives them
the data set (:mod:`ats.datasets.megapixel_mnist`) and the models
(:mod:`ats.models.megapixel_mnist`).

* :class:`TrainConfig`: the hyper-parameters; :data:`PRESETS`: ``paper``
  (the paper's set-up) and ``quick`` (a small CPU set-up that reaches a low
  test error within minutes), as overrides of it.
* :func:`make_data`: generate and save a data set of a preset.
* :func:`train`: train one model (``ats``, ``full-cnn`` or ``low-cnn``) into
  its own run directory, with a checkpoint per epoch, resume, pictures after
  every epoch and a final evaluation and report.
* :func:`evaluate_run`, :func:`draw_pictures`: evaluate or draw a finished or
  interrupted run again from its checkpoint; :func:`compare_runs`: several
  runs side by side.

Example::

    from ats.experiments import megapixel_mnist as experiment

    experiment.make_data("quick", "runs/data")
    results = experiment.train("runs/data", "runs/ats", preset="quick")
    results["test"]["sampled"]["error"], results["test"]["top_k"]["error"]
"""

import dataclasses
from pathlib import Path

import keras

from .. import checks, distribute, training
from ..datasets.megapixel_mnist import (
    MegapixelMNIST,
    MegapixelMNISTConfig,
    MegapixelMNISTSequence,
)
from ..models import megapixel_mnist as models
from ..training.hyperparameters import hyperparameter

__all__ = [
    "NetworkConfig",
    "TrainConfig",
    "PRESETS",
    "DEFAULT_PRESET",
    "EXPERIMENT",
    "train_config",
    "make_data",
    "build_model",
    "train",
    "evaluate_run",
    "draw_pictures",
    "compare_runs",
]


@dataclasses.dataclass(frozen=True)
class NetworkConfig(training.TrainConfig):
    """The hyper-parameters of a run of Megapixel MNIST's networks: those of
    :class:`ats.training.TrainConfig`, and:

    Attributes:
        filters: channels of the feature network (or the CNN baselines).
        attention_filters: channels of the attention network.
        attention_prior: weight of the attention's content prior (the low
            view's local contrast added to its logits; 0: none, the paper's
            network), see ``ats.models.megapixel_mnist.attention_network``.
    """

    filters: int = hyperparameter(
        32, "channels of the feature network (or CNN)", minimum=1
    )
    attention_filters: int = hyperparameter(
        8, "channels of the attention network", minimum=1
    )
    attention_prior: float = hyperparameter(
        0.0,
        "weight of the attention's content prior (local contrast; 0: none)",
        minimum=0,
    )


@dataclasses.dataclass(frozen=True)
class TrainConfig(NetworkConfig):
    """The hyper-parameters of a Megapixel MNIST run (``config.json``).

    Those of :class:`NetworkConfig` (``n_patches``, ``patch_size``,
    ``regularizer_strength``, ``replace`` and ``attention_filters`` apply to
    ``ats`` only), and:

    Attributes:
        model: ``"ats"``, ``"full-cnn"`` or ``"low-cnn"``.
        cache: keep the rendered images in memory after the first epoch
            (``MegapixelMNISTSequence(cache=...)``), for small data sets.
        train_images: train on the first ``train_images`` images of the
            training set only (None: all of them), e.g. to time a costly
            baseline on a part of an epoch.
    """

    model: str = hyperparameter("ats", "the model", choices=tuple(models.MODELS))
    cache: bool = hyperparameter(
        False,
        "keep rendered images in memory after the first epoch (about 4 bytes "
        "per pixel)",
    )
    train_images: int = hyperparameter(
        None,
        "train on the first N training images only (e.g. to time a costly baseline)",
        kind="int",
        minimum=1,
        optional=True,
    )


PRESETS = {
    "paper": {
        "description": "the paper's set-up: 1500x1500 images with noise, "
        "scale 0.12, 10 patches of 50x50, batch 128; needs a "
        "GPU or days of CPU",
        "data": MegapixelMNISTConfig.paper().to_dict(),
        "train": {
            "batch_size": 128,
            "learning_rate": 1e-3,
            "clipnorm": 1.0,
            "n_patches": 10,
            "patch_size": (50, 50),
            "regularizer_strength": 1e-4,
            "workers": 2,
        },
        "epochs": {"ats": 500, "full-cnn": 500, "low-cnn": 500},
    },
    "quick": {
        "description": "a CPU demo: 250x250 images with noise, scale 0.25, "
        "24 patches of 40x40, a content prior on the attention, a few "
        "minutes of training",
        "data": MegapixelMNISTConfig(
            width=250, height=250, scale=0.25, n_noise=3, n_train=8000, n_test=1000
        ).to_dict(),
        "train": {
            "batch_size": 16,
            "learning_rate": 3e-3,
            "clipnorm": 1.0,
            "n_patches": 24,
            "patch_size": (40, 40),
            "regularizer_strength": 1e-4,
            "filters": 16,
            "attention_prior": 2.0,
            "cooldown_epochs": 5,
            "workers": 2,
            "cache": True,
        },
        "epochs": {"ats": 15, "full-cnn": 1, "low-cnn": 1},
    },
}
"""The presets: for each name a description, the data set's
``MegapixelMNISTConfig`` fields, the training hyper-parameters (overrides of
:class:`TrainConfig`'s defaults) and the number of epochs per model."""

DEFAULT_PRESET = "quick"

NOTES = (
    "`ats`: attention sampling; `full-cnn`: the same feature network applied "
    "to the whole high-resolution image; `low-cnn`: a CNN on the "
    "low-resolution view alone. Models trained for fewer epochs or images "
    "are not converged: compare their time per image and peak memory."
)


def _preset(name):
    return PRESETS[checks.choice("preset", name, PRESETS)]


def train_config(preset="quick", model="ats", **overrides):
    """The ``TrainConfig`` of ``model`` in ``preset``, with overrides.

    Args:
        preset: ``"quick"`` or ``"paper"``.
        model: ``"ats"`` (also for None), ``"full-cnn"`` or ``"low-cnn"``.
        **overrides: ``TrainConfig`` fields to change (None values ignored).

    Returns:
        A ``TrainConfig``.
    """
    spec = _preset(preset)
    model = checks.choice("model", model or "ats", models.MODELS)
    fields = {**spec["train"], "model": model, "epochs": spec["epochs"][model]}
    return TrainConfig(**fields).with_overrides(overrides)


def make_data(preset, out, progress=True, **overrides):
    """Generate the data set of ``preset`` and save it to ``out``.

    If ``out`` already holds a data set with the same configuration it is
    reused; one with a different configuration raises ``FileExistsError``.

    Args:
        preset: ``"quick"`` or ``"paper"``.
        out: str or path-like, the directory to write.
        progress: show progress bars.
        **overrides: ``MegapixelMNISTConfig`` fields to change (None values
            ignored), e.g. ``n_train=500``.

    Returns:
        The ``MegapixelMNIST`` data set.
    """
    fields = {
        **_preset(preset)["data"],
        **{k: v for k, v in overrides.items() if v is not None},
    }
    config = MegapixelMNISTConfig(**fields)
    out = Path(out)
    if (out / "config.json").is_file():
        existing = MegapixelMNIST.load(out)
        if existing.config == config:
            if progress:
                print(f"reusing the data set in {out}", flush=True)
            return existing
        raise FileExistsError(
            f"{str(out)!r} already holds a different data set "
            f"({existing.config}); choose another --out directory"
        )
    data = MegapixelMNIST.generate(config, progress=progress)
    data.save(out)
    return data


def compile_classifier(model, config, loss_scale=False):
    """Compile ``model`` with Adam (``config.learning_rate``,
    ``config.clipnorm``), sparse categorical cross-entropy averaged over
    the sample weights and an ``"accuracy"`` metric (weighted), so that the
    padding rows of a batch (``ats.distribute.EvenBatches``,
    ``ats.lazy.BucketedSequence``: weight 0) count for nothing.

    ``loss_scale=True`` wraps Adam in ``keras.optimizers.
    LossScaleOptimizer`` (dynamic loss scaling), for a model with float16
    parts inside a float32 model, which Keras does not scale by itself:
    without it, small float16 gradients underflow to zero."""
    optimizer = keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm)
    if loss_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer,
        keras.losses.SparseCategoricalCrossentropy(reduction="mean_with_sample_weight"),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def build_model(config, data_config, setup=None):
    """The compiled model of a run.

    Args:
        config: a ``TrainConfig``.
        data_config: the ``MegapixelMNISTConfig`` of the data set.
        setup: optional ``ats.distribute.Setup``: the model is wrapped for
            its engine (``setup.wrap``) before compiling; build it in
            ``setup.scope()``.

    Returns:
        The model of ``config.model`` for images of ``data_config``,
        compiled by :func:`compile_classifier`.
    """
    if config.model == "ats":
        model = models.ats_model(
            data_config.low_shape,
            data_config.high_shape,
            n_patches=config.n_patches,
            patch_size=config.patch_size,
            regularizer_strength=config.regularizer_strength,
            replace=config.replace,
            filters=config.filters,
            attention_filters=config.attention_filters,
            attention_prior=config.attention_prior,
            seed=config.seed,
        )
    elif config.model == "full-cnn":
        model = models.full_image_cnn(data_config.high_shape, filters=config.filters)
    else:
        model = models.low_res_cnn(data_config.low_shape, filters=config.filters)
    if setup is not None:
        model = setup.wrap(model)
    return compile_classifier(model, config)


class Experiment(training.Experiment):
    """Megapixel MNIST's pieces of a training run."""

    name = "megapixel_mnist"
    title = "Megapixel MNIST"
    command = "ats mnist train"
    config_class = TrainConfig
    default_preset = DEFAULT_PRESET
    n_classes = 10

    def load_data(self, data_dir):
        return MegapixelMNIST.load(data_dir)

    def labels(self, data, split):
        return data.split(split).labels

    def describe_data(self, data):
        config = data.config
        noise = f"{config.n_noise} noise scribbles" if config.noise else "no noise"
        low_h, low_w = config.low_shape[:2]
        summary = (
            f"{config.width}x{config.height} images ({noise}), low "
            f"resolution {low_w}x{low_h} (scale {config.scale}), "
            f"{config.n_train} training and {config.n_test} test images"
        )
        return config.to_dict(), summary

    def check(self, config, data):
        if (config.train_images or 0) > data.config.n_train:
            raise ValueError(
                f"train_images ({config.train_images}) must be at most the "
                f"number of training images ({data.config.n_train})"
            )

    def build_model(self, config, data, setup=None):
        return build_model(config, data.config, setup)

    def sequence(self, data, split, config, setup=None):
        """The batches of ``split`` that this process feeds.

        Under a distribution ``setup`` a process feeds its block of the split
        (``setup.shard_slice``) in batches of ``setup.local_batch_size``, and
        every batch splits evenly across the devices: training drops the
        remainder, evaluation pads it with weight-0 copies (``EvenBatches``).
        """
        training_split = split == "train"
        images, batch_size = data.split(split), config.batch_size
        if training_split and config.train_images is not None:
            images = images.subset(slice(0, config.train_images))
        if not len(images):
            return None
        if setup is not None:
            images = images.subset(setup.shard_slice(len(images), training_split))
            batch_size = setup.local_batch_size(batch_size)
        # At most `workers` batches wait in the queue: a batch of the paper's
        # 1500x1500 images takes 1.2 GB.
        sequence = MegapixelMNISTSequence(
            images,
            batch_size,
            shuffle=training_split,
            seed=config.seed,
            views=models.MODELS[config.model],
            cache=config.cache,
            workers=config.batch_workers,
            max_queue_size=config.batch_workers,
        )
        return distribute.even_batches(sequence, training_split)

    def train_images(self, config, data):
        return config.train_images or data.config.n_train

    def config(self, preset=None, **overrides):
        return train_config(preset or DEFAULT_PRESET, **overrides)

    def pictures(self, run, model, data, config):
        if config.model != "ats":
            return None
        split = data.split("test")
        indices = [i for i in config.picture_images if i < len(split)]
        (x_low, x_high), labels = split.render_batch(indices)

        def inspect(deterministic):
            return models.inspect(
                model, x_low, x_high, deterministic=deterministic, seed=config.seed
            )

        return training.AttentionPictures(run, inspect, x_high, labels)


EXPERIMENT = Experiment()
"""The experiment, as :mod:`ats.training`'s functions take it."""

train = EXPERIMENT.train
"""``train(data_dir, run_dir, preset="quick", resume=False, verbose=1,
setup=None, **overrides)``: train a model (``model="ats"``, ``"full-cnn"``
or ``"low-cnn"``) in its own run directory (:func:`ats.training.train`):
``config.json`` first, then after every epoch a row of ``metrics.csv``, a
checkpoint and (``ats``) ``pictures/epoch_NNN.png``; at the end the test
errors with sampled and top-k patches, ``results.json``, the pictures
``final_sampled.png``, ``final_top_k.png`` and ``curves.png``, and
``report.md``. ``**overrides`` are :class:`TrainConfig` fields."""

evaluate_run = EXPERIMENT.evaluate_run
"""Evaluate a run's checkpoint again (:func:`ats.training.evaluate_run`)."""

draw_pictures = EXPERIMENT.draw_pictures
"""Draw a run's pictures again (:func:`ats.training.draw_pictures`)."""


def compare_runs(run_dirs, out):
    """Several finished runs side by side in the Markdown file ``out``
    (:func:`ats.training.compare_runs`); returns its text."""
    return training.compare_runs(
        run_dirs,
        out,
        title="Megapixel MNIST: attention sampling and the baselines",
        notes=NOTES,
    )
