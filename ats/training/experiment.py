"""A training run of an experiment: the generic steps, the experiment's pieces.

An experiment (a data set and the models trained on it) subclasses
:class:`Experiment` and fills in its pieces: how to open its data, build and
compile a model, and batch a split. :func:`train` then does what every run
does, in this order:

1. resolve the configuration (or read it back to ``resume``), open the
   data, check it (labels among the classes, a training set), build the
   model and the batches, run the model on a training image and read the
   checkpoint to resume, all before writing a file;
2. lock the run directory (:meth:`RunDirectory.lock`: a second process is
   refused), write ``config.json``; fit with a row of ``metrics.csv``, a checkpoint
   and (when the experiment draws them) ``pictures/epoch_NNN.png`` after
   every epoch (:func:`ats.training.fit`);
3. evaluate with sampled and with the most attended patches
   (:func:`ats.training.evaluate`), draw ``curves.png`` and the final
   pictures, write ``results.json`` and ``report.md``.

:func:`evaluate_run` and :func:`draw_pictures` do steps 3 again from a run's
checkpoint. :mod:`ats.experiments` holds the experiments.
"""

import contextlib
import os
import platform
import statistics
import time
from pathlib import Path

import keras
import numpy as np

from .. import distribute
from .checkpoint import load_checkpoint, saved_epoch
from .evaluation import evaluate
from .hyperparameters import TrainConfig
from .pictures import save_training_curves
from .report import write_run_report
from .resources import peak_memory_mb
from .run import RunDirectory, RunFileError
from .trainer import check_resumable, fit

__all__ = [
    "Experiment",
    "TrainingInterrupted",
    "train",
    "evaluate_run",
    "draw_pictures",
    "environment",
    "print_results",
]


# The keys of config.json a run is resumed, evaluated or drawn from.
_REQUIRED = ("train", "data_dir")


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C); the message says what the run
    directory keeps and how to resume it."""


class Experiment:
    """The pieces of an experiment that :func:`train` puts together.

    Subclass it, set the attributes and implement the methods that raise
    ``NotImplementedError``.

    Attributes:
        name: str, the experiment's identifier in ``config.json``.
        title: str, its name in reports and figures.
        command: str, the command that trains it, named in messages.
        config_class: its hyper-parameters, a :class:`TrainConfig` subclass.
        default_preset: the preset of a run without one (None: the
            experiment has no presets).
        n_classes: the number of classes of a classification experiment
            (its labels are checked to be in ``[0, n_classes)`` before
            training), or None.
    """

    name = "experiment"
    title = "Experiment"
    command = "train"
    config_class = TrainConfig
    default_preset = None
    n_classes = None

    def load_data(self, data_dir):
        """Open the data set in ``data_dir``."""
        raise NotImplementedError

    def describe_data(self, data):
        """``(fields, summary)``: a JSON-serialisable dict describing
        ``data`` (``config.json``'s ``data``) and a line for reports."""
        raise NotImplementedError

    def check(self, config, data):
        """Raise ``ValueError`` if ``config`` does not fit ``data``."""

    def build_model(self, config, data, setup=None):
        """The compiled model of a run: wrapped with ``setup.wrap`` (when a
        ``setup`` is given) before compiling; called in ``setup.scope()``."""
        raise NotImplementedError

    def sequence(self, data, split, config, setup=None):
        """The ``PyDataset`` of ``split`` (``"train"`` or ``"test"``) this
        process feeds, or None when the split is empty."""
        raise NotImplementedError

    def labels(self, data, split):
        """The labels of ``split`` (checked against ``n_classes``), or None."""
        return None

    def train_images(self, config, data):
        """The number of images in the training set a run uses (an epoch
        of ``config.steps_per_epoch`` steps may see fewer)."""
        raise NotImplementedError

    def model_name(self, config):
        """The name of the run's model in results and reports."""
        return getattr(config, "model", "ats")

    def pictures(self, run, model, data, config):
        """An :class:`ats.training.pictures.AttentionPictures` of the run, or
        None to draw only the training curves."""
        return None

    def config(self, preset=None, **overrides):
        """The configuration of a new run: ``config_class``'s defaults (or
        those of ``preset``, for an experiment that has presets) with
        ``overrides`` (None values ignored)."""
        if preset is not None:
            raise ValueError(f"{self.title} has no presets, got preset={preset!r}")
        return self.config_class().with_overrides(overrides)

    def train(self, data_dir, run_dir, preset=None, **options):
        """:func:`train` a run of this experiment."""
        return train(self, data_dir, run_dir, preset, **options)

    def evaluate_run(self, run_dir, data_dir=None, verbose=1, on_result=None):
        """:func:`evaluate_run` a run of this experiment."""
        return evaluate_run(self, run_dir, data_dir, verbose, on_result)

    def draw_pictures(self, run_dir, data_dir=None, images=None):
        """:func:`draw_pictures` of a run of this experiment."""
        return draw_pictures(self, run_dir, data_dir, images)


def environment():
    """The backend, versions, machine and CPUs of this process."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    return {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": cpus,
    }


def _saved_config(experiment, run, saved):
    """The ``TrainConfig`` of a run's ``config.json``, checked."""
    if saved.get("experiment", experiment.name) != experiment.name:
        raise RunFileError(
            f"{run.config_path}: a run of {saved.get('title') or saved['experiment']}, "
            f"not of {experiment.title}: use that experiment's command"
        )
    try:
        return experiment.config_class.from_dict(saved["train"])
    except (TypeError, ValueError) as error:
        raise RunFileError(
            f"{run.config_path}: its hyper-parameters are not valid ({error})"
        ) from None


def _resumed_config(experiment, run, saved, overrides):
    changed = {k for k, v in overrides.items() if v is not None} - {"epochs"}
    if changed:
        raise ValueError(
            f"cannot change {sorted(changed)} when resuming: the run "
            "keeps its saved configuration (only epochs may change)"
        )
    return _saved_config(experiment, run, saved).with_overrides(overrides)


def _check_labels(experiment, data, data_dir):
    """Refuse labels outside ``[0, n_classes)`` before training."""
    if experiment.n_classes is None:
        return
    for split in ("train", "test"):
        labels = experiment.labels(data, split)
        if labels is None or not len(labels):
            continue
        labels = np.asarray(labels)
        bad = np.flatnonzero((labels < 0) | (labels >= experiment.n_classes))
        if not np.issubdtype(labels.dtype, np.integer) or len(bad):
            first = bad[0] if len(bad) else 0
            raise ValueError(
                f"{data_dir}: the {split} labels must be classes in [0, "
                f"{experiment.n_classes}), got {labels[first]!r} (image {first})"
            )


def _first_of(batch):
    """The first image of a batch's inputs (a tuple/list or an array)."""
    if isinstance(batch, (tuple, list)):
        return type(batch)(_first_of(x) for x in batch)
    return batch[:1]


def _try_model(model, train_data, config):
    """Run ``model`` on the first training image: an argument that does not
    fit the model (a patch smaller than the feature network's receptive
    field, too many patches) fails here, before any file is written."""
    inputs = train_data[0][0]
    try:
        model(_first_of(inputs), training=False)
    except Exception as error:
        message = str(error).strip().splitlines()
        raise ValueError(
            "the model cannot run on the training images with "
            f"n_patches={config.n_patches}, patch_size={config.patch_size} "
            f"({type(error).__name__}: {message[0] if message else ''}); "
            "nothing was written"
        ) from error


def _interrupted(experiment, run, config):
    epoch = saved_epoch(run.checkpoint_path) if run.has_checkpoint() else None
    resume = f"`{experiment.command} --resume --run-dir {run.path}`"
    if epoch is None:
        kept = "no checkpoint yet (it was in its first epoch)"
    else:
        kept = (
            f"the checkpoint and metrics of epoch {epoch} of {config.epochs} "
            "(the epoch in progress is lost)"
        )
    return TrainingInterrupted(
        f"interrupted: {run.path} keeps {kept}; resume with {resume}"
    )


def train(
    experiment,
    data_dir,
    run_dir,
    preset=None,
    resume=False,
    verbose=1,
    setup=None,
    **overrides,
):
    """Train a model of ``experiment`` in its own run directory.

    Args:
        experiment: an :class:`Experiment`.
        data_dir: the data set's directory (ignored with ``resume``).
        run_dir: the run directory; it must not hold a run already unless
            ``resume``.
        preset: the preset of the hyper-parameters, for an experiment that
            has presets (``Experiment.config``).
        resume: continue the run in ``run_dir`` from its last checkpoint
            (from the start if it was interrupted before its first one) with
            its saved configuration (``data_dir`` and ``preset`` are
            ignored, and of the overrides only ``epochs`` may be given, to
            change the total number of epochs).
        verbose: 0 (silent) or 1 (progress bars and a line per epoch).
        setup: optional ``ats.distribute.Setup``: ``batch_size`` is then the
            global batch, each process trains on its block of the training
            set, and only process 0 writes to ``run_dir`` (which every
            process must see, to resume).
        **overrides: fields of ``experiment.config_class`` to change (None
            values ignored).

    Returns:
        The results dict also written to ``results.json`` (on every
        process).
    """
    start = time.perf_counter()
    setup = setup or distribute.Setup()
    writes = setup.process_index == 0
    run = RunDirectory(run_dir)
    if resume:
        saved = run.read_config(_REQUIRED)
        config = _resumed_config(experiment, run, saved, overrides)
        check_resumable(run)
        data_dir = saved["data_dir"]
    else:
        _refuse_existing(run)
        preset = preset or experiment.default_preset
        config = experiment.config(preset, **overrides)
    data = experiment.load_data(data_dir)
    experiment.check(config, data)
    _check_labels(experiment, data, data_dir)
    keras.utils.set_random_seed(config.seed)
    with setup.scope(), contextlib.ExitStack() as stack:
        net = experiment.build_model(config, data, setup)
        train_data = experiment.sequence(data, "train", config, setup)
        test_data = experiment.sequence(data, "test", config, setup)
        if train_data is None:
            raise ValueError(f"{data_dir}: the data set has no training images")
        if setup.strategy == "none":
            _try_model(net, train_data, config)
        if writes:
            stack.enter_context(run.lock())
            if not resume:
                _refuse_existing(run)  # again: another process may have begun
        restored = None
        if resume and run.has_checkpoint():
            restored = load_checkpoint(run.checkpoint_path, net)
        if resume:
            saved.update(train=config.to_dict(), distribution=setup.describe())
        else:
            fields, summary = experiment.describe_data(data)
            saved = {
                "experiment": experiment.name,
                "title": experiment.title,
                "preset": preset,
                "train": config.to_dict(),
                "data_dir": str(Path(data_dir).resolve()),
                "data": fields,
                "data_summary": summary,
                "environment": environment(),
                "distribution": setup.describe(),
            }
        # Every process has read the run directory before process 0 writes.
        setup.barrier()
        if writes:
            run.write_config(saved)
        pictures = (
            experiment.pictures(run, setup.unwrap(net), data, config)
            if writes
            else None
        )
        try:
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
                steps_per_epoch=config.steps_per_epoch,
                restored=restored,
            )
            results = _finish(
                experiment,
                saved,
                (net, config, data, test_data),
                history,
                verbose if writes else 0,
                time.perf_counter() - start,
            )
            if writes:
                _write_results(experiment, run, results, history, pictures, verbose)
        except KeyboardInterrupt:
            raise _interrupted(experiment, run, config) from None
    # Process 0's files are complete before any process goes on (e.g. to
    # resume or evaluate the run).
    setup.barrier()
    return results


def _refuse_existing(run):
    if run.config_path.exists():
        raise FileExistsError(
            f"{str(run.path)!r} already holds a run: pass resume "
            "(--resume) to continue it, or choose another run directory"
        )


def _finish(experiment, saved, trained, history, verbose, seconds):
    """Evaluate a trained run; returns its results."""
    model, config, data, test_data = trained
    images = experiment.train_images(config, data)
    if config.steps_per_epoch is not None:
        images = min(images, config.steps_per_epoch * config.batch_size)
    if verbose and test_data is not None:
        print("evaluating on the test set", flush=True)
    test = None if test_data is None else evaluate(model, test_data, verbose=verbose)
    train_seconds = [row["train_seconds"] for row in history]
    return {
        "model": experiment.model_name(config),
        "preset": saved["preset"],
        "epochs": len(history),
        "parameters": int(model.count_params()),
        "train_images": images,
        "test": test,
        "seconds_per_epoch": statistics.median(train_seconds),
        "first_epoch_seconds": train_seconds[0],
        "test_seconds_per_epoch": statistics.median(
            row["test_seconds"] for row in history
        ),
        "peak_memory_mb": peak_memory_mb(),
        "process_seconds": seconds,
        "environment": environment(),
        "distribution": saved["distribution"],
    }


def _write_results(experiment, run, results, history, pictures, verbose):
    """Draw the curves and final pictures, write results and report."""
    save_training_curves(
        run.picture_path("curves.png"),
        history,
        title=f"{results['model']} on {experiment.title}",
    )
    if pictures is not None:
        pictures.final(len(history))
    run.write_results(results)
    write_run_report(run)
    if verbose:
        print_results(results["test"])
        print(f"report: {run.report_path}")
        print(f"pictures: {run.pictures_dir}", flush=True)


def print_results(test):
    """Print the test errors (or losses) of an ``evaluate`` result (None:
    no test images)."""
    if test is None:
        print("no test images: nothing evaluated")
        return
    metric = "error" if "error" in test["sampled"] else "loss"
    form = "{:.2%}" if metric == "error" else "{:.4f}"
    line = f"test {metric}: {form.format(test['sampled'][metric])} (sampled patches)"
    if test["top_k"] is not None:
        line += f", {form.format(test['top_k'][metric])} (top-k patches)"
    print(line, flush=True)


def _load_run(experiment, run_dir, data_dir=None):
    """The run, its config, data set and compiled model from a checkpoint."""
    run = RunDirectory(run_dir)
    saved = run.read_config(_REQUIRED)
    config = _saved_config(experiment, run, saved)
    if not run.has_checkpoint():
        raise FileNotFoundError(
            f"run {str(run.path)!r} has no checkpoint yet: train it first "
            f"(or resume it) with `{experiment.command}`"
        )
    data = experiment.load_data(data_dir or saved["data_dir"])
    model = experiment.build_model(config, data)
    load_checkpoint(run.checkpoint_path, model)
    return run, config, data, model


def evaluate_run(experiment, run_dir, data_dir=None, verbose=1, on_result=None):
    """Evaluate a run's checkpoint again, with sampled and top-k patches.

    Updates ``results.json`` (when the run has finished) and ``report.md``,
    under the run's lock (refused while another process trains it).

    Args:
        experiment: the run's :class:`Experiment`.
        run_dir: a run directory written by :func:`train`.
        data_dir: the data set, if it moved since training.
        verbose: 0 (silent) or 1 (progress bars).
        on_result: optional callable ``(test) -> None`` called with the
            result before any file is written (e.g. to print it even when
            the run directory is read-only).

    Returns:
        ``{"sampled": {...}, "top_k": {...} or None}`` as
        :func:`ats.training.evaluation.evaluate`, or None without test
        images.
    """
    run, config, data, model = _load_run(experiment, run_dir, data_dir)
    results = run.read_results()
    test_data = experiment.sequence(data, "test", config)
    test = None if test_data is None else evaluate(model, test_data, verbose=verbose)
    if on_result is not None:
        on_result(test)
    if results is not None:
        with run.lock():
            results["test"] = test
            run.write_results(results)
            write_run_report(run)
    return test


def draw_pictures(experiment, run_dir, data_dir=None, images=None):
    """Draw a run's pictures again from its checkpoint and metrics.

    Writes ``curves.png`` and, when the experiment draws them,
    ``final_sampled.png`` and ``final_top_k.png`` in the run's ``pictures/``.

    Args:
        experiment: the run's :class:`Experiment`.
        run_dir: a run directory written by :func:`train`.
        data_dir: the data set, if it moved since training.
        images: indices of the test images to draw (default: the run's).

    Returns:
        The list of written paths.
    """
    run, config, data, model = _load_run(experiment, run_dir, data_dir)
    if images is not None:
        config = config.with_overrides({"picture_images": tuple(images)})
    paths = []
    history = run.read_metrics()
    if history:
        path = run.picture_path("curves.png")
        title = f"{experiment.model_name(config)} on {experiment.title}"
        save_training_curves(path, history, title=title)
        paths.append(path)
    pictures = experiment.pictures(run, model, data, config)
    if pictures is not None:
        paths.extend(pictures.final(len(history)))
    return [p for p in paths if p is not None]
