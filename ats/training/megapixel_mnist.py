"""The Megapixel MNIST experiment: presets, data, training, evaluation, pictures.

This is the library behind ``ats mnist ...`` (see ``docs/megapixel_mnist.md``).

* :data:`PRESETS`: ``paper`` (the paper's set-up) and ``quick`` (a small CPU
  set-up that reaches a low test error within minutes).
* :func:`make_data`: generate and save a data set of a preset.
* :func:`train`: train one model (``ats``, ``full-cnn`` or ``low-cnn``) into
  its own run directory, with a checkpoint per epoch, resume, pictures after
  every epoch and a final evaluation and report.
* :func:`evaluate_run`, :func:`draw_pictures`: evaluate or draw a finished or
  interrupted run again from its checkpoint.

Example::

    from ats.training import megapixel_mnist as experiment

    experiment.make_data("quick", "runs/data")
    results = experiment.train("runs/data", "runs/ats", preset="quick")
    results["test"]["sampled"]["error"], results["test"]["top_k"]["error"]
"""

import dataclasses
import os
import platform
import statistics
import time
from pathlib import Path

import keras
import numpy as np

from .. import distribute
from ..datasets.megapixel_mnist import (
    MegapixelMNIST,
    MegapixelMNISTConfig,
    MegapixelMNISTSequence,
)
from ..models import megapixel_mnist as models
from .checkpoint import load_checkpoint
from .evaluation import evaluate
from .report import write_run_report
from .resources import peak_memory_mb
from .run import RunDirectory
from .trainer import fit

__all__ = [
    "TrainConfig",
    "PRESETS",
    "train_config",
    "make_data",
    "build_model",
    "train",
    "evaluate_run",
    "draw_pictures",
]

EXPERIMENT = "megapixel_mnist"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The hyper-parameters of one training run (``config.json``).

    Attributes:
        model: ``"ats"``, ``"full-cnn"`` or ``"low-cnn"``.
        epochs: epochs to train.
        batch_size: images per step.
        learning_rate: Adam's learning rate.
        clipnorm: Adam's gradient-norm clipping.
        n_patches: patches sampled per image (``ats``).
        patch_size: ``(height, width)`` of the patches (``ats``).
        regularizer_strength: weight of the attention's entropy regularizer
            (``ats``).
        replace: sample patches with replacement (``ats``).
        filters: channels of the feature network / CNN convolutions.
        attention_filters: channels of the attention network (``ats``).
        seed: seed of the weights' initialisation, the shuffling and the
            sampling.
        picture_images: indices of the test images drawn in the pictures.
        workers: threads rendering batches (``PyDataset(workers=...)``).
        cache: keep the rendered images in memory after the first epoch
            (``MegapixelMNISTSequence(cache=...)``), for small data sets.
        train_images: train on the first ``train_images`` images of the
            training set only (None: all of them), e.g. to time a costly
            baseline on a part of an epoch.
    """

    model: str = "ats"
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    clipnorm: float = 1.0
    n_patches: int = 10
    patch_size: tuple = (50, 50)
    regularizer_strength: float = 1e-4
    replace: bool = False
    filters: int = 32
    attention_filters: int = 8
    seed: int = 0
    picture_images: tuple = (0, 1, 2)
    workers: int = 1
    cache: bool = False
    train_images: int | None = None

    def __post_init__(self):
        if self.model not in models.MODELS:
            raise ValueError(
                f"model must be one of {sorted(models.MODELS)}, got {self.model!r}"
            )
        for name in (
            "epochs",
            "batch_size",
            "n_patches",
            "filters",
            "attention_filters",
            "workers",
        ):
            _check_int(name, getattr(self, name), 1)
        _check_int("seed", self.seed, 0)
        if self.train_images is not None:
            _check_int("train_images", self.train_images, 1)
        for name in ("learning_rate", "clipnorm"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or value <= 0
            ):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if (
            isinstance(self.regularizer_strength, bool)
            or not isinstance(self.regularizer_strength, (int, float))
            or self.regularizer_strength < 0
        ):
            raise ValueError(
                "regularizer_strength must be a number >= 0, "
                f"got {self.regularizer_strength!r}"
            )
        for name in ("replace", "cache"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"{name} must be True or False, got {getattr(self, name)!r}"
                )
        object.__setattr__(self, "patch_size", tuple(self.patch_size))
        if len(self.patch_size) != 2:
            raise ValueError(
                f"patch_size must be (height, width), got {self.patch_size!r}"
            )
        for size in self.patch_size:
            _check_int("patch_size", size, 1)
        object.__setattr__(self, "picture_images", tuple(self.picture_images))
        for index in self.picture_images:
            _check_int("picture_images", index, 0)

    def to_dict(self):
        """The fields as a JSON-serialisable dict."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }


def _check_int(name, value, minimum):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


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
        "16 patches of 40x40, a few minutes of training",
        "data": MegapixelMNISTConfig(
            width=250, height=250, scale=0.25, n_noise=3, n_train=8000, n_test=500
        ).to_dict(),
        "train": {
            "batch_size": 16,
            "learning_rate": 3e-3,
            "clipnorm": 1.0,
            "n_patches": 16,
            "patch_size": (40, 40),
            "regularizer_strength": 1e-4,
            "filters": 16,
            "workers": 2,
            "cache": True,
        },
        "epochs": {"ats": 15, "full-cnn": 1, "low-cnn": 1},
    },
}
"""The presets: for each name a description, the data set's
``MegapixelMNISTConfig`` fields, the training hyper-parameters and the number
of epochs per model."""


def _preset(name):
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return PRESETS[name]


def train_config(preset="quick", model="ats", **overrides):
    """The ``TrainConfig`` of ``model`` in ``preset``, with overrides.

    Args:
        preset: ``"quick"`` or ``"paper"``.
        model: ``"ats"``, ``"full-cnn"`` or ``"low-cnn"``.
        **overrides: ``TrainConfig`` fields to change (None values ignored).

    Returns:
        A ``TrainConfig``.
    """
    spec = _preset(preset)
    if model not in models.MODELS:
        raise ValueError(f"model must be one of {sorted(models.MODELS)}, got {model!r}")
    unknown = set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
    fields = {**spec["train"], "model": model, "epochs": spec["epochs"][model]}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**fields)


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
        compiled with Adam, sparse categorical cross-entropy and an
        ``"accuracy"`` metric (a weighted metric, so that padded evaluation
        batches of ``ats.distribute.EvenBatches`` count real images only).
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
            seed=config.seed,
        )
    elif config.model == "full-cnn":
        model = models.full_image_cnn(data_config.high_shape, filters=config.filters)
    else:
        model = models.low_res_cnn(data_config.low_shape, filters=config.filters)
    if setup is not None:
        model = setup.wrap(model)
    model.compile(
        keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm),
        "sparse_categorical_crossentropy",
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def _sequence(data, name, config, setup=None):
    """The batches of split ``name`` that this process feeds.

    Under a distribution ``setup`` a process feeds its block of the split
    (``setup.shard_slice``) in batches of ``setup.local_batch_size``, and
    every batch splits evenly across the devices: training drops the
    remainder, evaluation pads it with weight-0 copies (``EvenBatches``).
    """
    training = name == "train"
    split, batch_size = data.split(name), config.batch_size
    if training and config.train_images is not None:
        split = split.subset(slice(0, config.train_images))
    if setup is not None:
        split = split.subset(setup.shard_slice(len(split), training))
        batch_size = setup.local_batch_size(batch_size)
    # At most `workers` batches wait in the queue: a batch of the paper's
    # 1500x1500 images takes 1.2 GB.
    sequence = MegapixelMNISTSequence(
        split,
        batch_size,
        shuffle=training,
        seed=config.seed,
        views=models.MODELS[config.model],
        cache=config.cache,
        workers=config.workers,
        max_queue_size=config.workers,
    )
    return distribute.even_batches(sequence, training)


class _Pictures:
    """Draws the attention of an ``ats`` model on fixed test images."""

    def __init__(self, run, model, data, config):
        split = data.split("test")
        indices = [i for i in config.picture_images if i < len(split)]
        (self.x_low, self.x_high), self.y = split.render_batch(indices)
        self.run, self.model, self.seed = run, model, config.seed

    def draw(self, name, title, deterministic=False):
        from ..visualize import save_attention_figure

        if not len(self.y):
            return None
        seen = models.inspect(
            self.model,
            self.x_low,
            self.x_high,
            deterministic=deterministic,
            seed=self.seed,
        )
        path = self.run.picture_path(name)
        save_attention_figure(path, self.x_high, seen, labels=self.y, title=title)
        return path

    def epoch(self, epoch):
        """Draw ``epoch_NNN.png`` with sampled patches."""
        self.draw(f"epoch_{epoch:03d}.png", f"after epoch {epoch}: sampled patches")

    def final(self, epochs):
        """Draw ``final_sampled.png`` and ``final_top_k.png``."""
        return [
            self.draw("final_sampled.png", f"after {epochs} epochs: sampled patches"),
            self.draw(
                "final_top_k.png",
                f"after {epochs} epochs: the most attended patches",
                deterministic=True,
            ),
        ]


def _load_run(run_dir, data_dir=None):
    """The run, its config, data set and compiled model from a checkpoint."""
    run = RunDirectory(run_dir)
    saved = run.read_config()
    config = TrainConfig(**saved["train"])
    data = MegapixelMNIST.load(data_dir or saved["data_dir"])
    model = build_model(config, data.config)
    if not run.has_checkpoint():
        raise FileNotFoundError(
            f"run {str(run.path)!r} has no checkpoint yet: train it first "
            "(or resume it) with `ats mnist train`"
        )
    load_checkpoint(run.checkpoint_path, model)
    return run, saved, config, data, model


def train(
    data_dir,
    run_dir,
    preset="quick",
    model="ats",
    resume=False,
    verbose=1,
    setup=None,
    **overrides,
):
    """Train a model of the experiment in its own run directory.

    Writes ``config.json`` first, then after every epoch a row of
    ``metrics.csv``, a checkpoint and (``ats``) ``pictures/epoch_NNN.png``;
    at the end the test errors with sampled and top-k patches,
    ``results.json``, the pictures ``final_sampled.png``,
    ``final_top_k.png`` and ``curves.png``, and ``report.md``.

    Args:
        data_dir: directory of a data set written by :func:`make_data`.
        run_dir: the run directory; it must not hold a run already unless
            ``resume``.
        preset: ``"quick"`` or ``"paper"``: the hyper-parameters.
        model: ``"ats"``, ``"full-cnn"`` or ``"low-cnn"``.
        resume: continue the run in ``run_dir`` from its last checkpoint
            (from the start if it was interrupted before its first one) with
            its saved configuration (``data_dir``, ``preset`` and ``model``
            are ignored; of the overrides only ``epochs`` may be given, to
            change the total number of epochs).
        verbose: 0 (silent) or 1 (progress bars and a line per epoch).
        setup: optional ``ats.distribute.Setup`` (from
            ``ats.distribute.configure``) to train on several devices or
            processes: ``batch_size`` is then the global batch, each process
            trains on its block of the training set, and only process 0
            writes to ``run_dir`` (which every process must see, to resume).
        **overrides: ``TrainConfig`` fields to change (None values ignored).

    Returns:
        The results dict also written to ``results.json`` (on every
        process; under PyTorch DDP its test errors are each process's own
        evaluation of the whole test set).
    """
    start = time.perf_counter()
    setup = setup or distribute.Setup()
    writes = setup.process_index == 0
    run = RunDirectory(run_dir)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if resume:
        saved = run.read_config()
        changed = set(overrides) - {"epochs"}
        if changed:
            raise ValueError(
                f"cannot change {sorted(changed)} when resuming: the run "
                "keeps its saved configuration (only epochs may change)"
            )
        config = dataclasses.replace(TrainConfig(**saved["train"]), **overrides)
        saved["train"] = config.to_dict()
        saved["distribution"] = setup.describe()
        data_dir = saved["data_dir"]
        if writes:
            run.write_config(saved)
    else:
        if run.config_path.exists():
            raise FileExistsError(
                f"{str(run.path)!r} already holds a run: pass resume "
                "(--resume) to continue it, or choose another run directory"
            )
        config = train_config(preset, model, **overrides)
    data = MegapixelMNIST.load(data_dir)
    if (config.train_images or 0) > data.config.n_train:
        raise ValueError(
            f"train_images ({config.train_images}) must be at most the "
            f"number of training images ({data.config.n_train})"
        )
    # Every process has read the run directory before process 0 writes it.
    setup.barrier()
    if not resume:
        saved = {
            "experiment": EXPERIMENT,
            "preset": preset,
            "train": config.to_dict(),
            "data_dir": str(Path(data_dir).resolve()),
            "data": data.config.to_dict(),
            "environment": _environment(),
            "distribution": setup.describe(),
        }
        if writes:
            run.write_config(saved)
    keras.utils.set_random_seed(config.seed)
    with setup.scope():
        net = build_model(config, data.config, setup)
        train_data = _sequence(data, "train", config, setup)
        test_data = _sequence(data, "test", config, setup)
        pictures = (
            _Pictures(run, setup.unwrap(net), data, config)
            if config.model == "ats" and writes
            else None
        )
        history = fit(
            net,
            train_data,
            test_data,
            run,
            config.epochs,
            resume=resume,
            on_epoch_end=pictures.epoch if pictures else None,
            verbose=verbose if writes else 0,
            writes=writes,
        )
        results = _finish(
            run,
            saved,
            net,
            test_data,
            history,
            pictures,
            verbose if writes else 0,
            time.perf_counter() - start,
            writes,
        )
    # Process 0's files are complete before any process goes on (e.g. to
    # resume or evaluate the run).
    setup.barrier()
    return results


def _environment():
    return {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": _cpu_count(),
    }


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def _finish(
    run, saved, model, test_data, history, pictures, verbose, seconds, writes=True
):
    """Evaluate, draw and report a trained run; returns its results."""
    from ..visualize import save_training_curves

    if verbose:
        print("evaluating on the test set", flush=True)
    test = evaluate(model, test_data, verbose=verbose)
    train_seconds = [row["train_seconds"] for row in history]
    results = {
        "model": saved["train"]["model"],
        "preset": saved["preset"],
        "epochs": len(history),
        "parameters": int(model.count_params()),
        "train_images": saved["train"]["train_images"] or saved["data"]["n_train"],
        "test": test,
        "seconds_per_epoch": statistics.median(train_seconds),
        "first_epoch_seconds": train_seconds[0],
        "test_seconds_per_epoch": statistics.median(
            row["test_seconds"] for row in history
        ),
        "peak_memory_mb": peak_memory_mb(),
        "process_seconds": seconds,
        "environment": _environment(),
        "distribution": saved["distribution"],
    }
    if not writes:
        return results
    save_training_curves(
        run.picture_path("curves.png"),
        history,
        title=f"{results['model']} on Megapixel MNIST",
    )
    if pictures is not None:
        pictures.final(len(history))
    run.write_results(results)
    write_run_report(run)
    if verbose:
        _print_results(run, results)
    return results


def _print_results(run, results):
    test = results["test"]
    line = f"test error: {test['sampled']['error']:.2%}"
    if test["top_k"] is not None:
        line += (
            f" with sampled patches, {test['top_k']['error']:.2%} with "
            "the most attended patches"
        )
    print(line)
    print(f"report: {run.report_path}")
    print(f"pictures: {run.pictures_dir}", flush=True)


def evaluate_run(run_dir, data_dir=None, verbose=1):
    """Evaluate a run's checkpoint again, with sampled and top-k patches.

    Updates ``results.json`` (when the run has finished) and ``report.md``.

    Args:
        run_dir: a run directory written by :func:`train`.
        data_dir: the data set, if it moved since training.
        verbose: 0 (silent) or 1 (progress bars).

    Returns:
        ``{"sampled": {...}, "top_k": {...} or None}`` as
        :func:`ats.training.evaluation.evaluate`.
    """
    run, _, config, data, model = _load_run(run_dir, data_dir)
    test = evaluate(model, _sequence(data, "test", config), verbose=verbose)
    results = run.read_results()
    if results is not None:
        results["test"] = test
        run.write_results(results)
        write_run_report(run)
    return test


def draw_pictures(run_dir, data_dir=None, images=None):
    """Draw a run's pictures again from its checkpoint and metrics.

    Writes ``curves.png`` and, for ``ats``, ``final_sampled.png`` and
    ``final_top_k.png`` in the run's ``pictures/``.

    Args:
        run_dir: a run directory written by :func:`train`.
        data_dir: the data set, if it moved since training.
        images: indices of the test images to draw (default: the run's).

    Returns:
        The list of written paths.
    """
    from ..visualize import save_training_curves

    run, _, config, data, model = _load_run(run_dir, data_dir)
    if images is not None:
        config = dataclasses.replace(config, picture_images=tuple(images))
    paths = []
    history = run.read_metrics()
    if history:
        path = run.picture_path("curves.png")
        save_training_curves(path, history, title=f"{config.model} on Megapixel MNIST")
        paths.append(path)
    if config.model == "ats":
        paths.extend(_Pictures(run, model, data, config).final(len(history)))
    return [p for p in paths if p is not None]
