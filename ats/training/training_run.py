"""A new (or resumed) training run of an experiment, from start to report.

:func:`train` is what ``Experiment.train`` and the training commands run;
the steps are listed in :mod:`ats.training.experiment`.
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
from .pictures import save_training_curves
from .report import write_run_report
from .resources import peak_memory_mb
from .run import RunDirectory, RunFileError
from .schedule import cooldown_learning_rate
from .trainer import check_resumable, fit

__all__ = [
    "REQUIRED_KEYS",
    "TrainingInterrupted",
    "environment",
    "print_results",
    "saved_config",
    "train",
]


# The keys of config.json a run is resumed, evaluated or drawn from.
REQUIRED_KEYS = ("train", "data_dir")


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C); the message says what the run
    directory keeps and how to resume it."""


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


def saved_config(experiment, run, saved):
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
    return saved_config(experiment, run, saved).with_overrides(overrides)


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
        saved = run.read_config(REQUIRED_KEYS)
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
        validation_split = experiment.validation_split(data)
        validation_data = (
            test_data
            if validation_split == "test"
            else experiment.sequence(data, validation_split, config, setup)
        )
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
                validation_data,
                run,
                config.epochs,
                resume=resume,
                on_epoch_end=pictures.epoch if pictures else None,
                verbose=verbose if writes else 0,
                writes=writes,
                steps_per_epoch=config.steps_per_epoch,
                restored=restored,
                learning_rate=cooldown_learning_rate(
                    config.learning_rate, config.epochs, config.cooldown_epochs
                ),
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
    if writes:
        experiment.final_evaluation(run, setup.unwrap(net), data, config, verbose)
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
