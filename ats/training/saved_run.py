"""A run that has a checkpoint: evaluate it or draw its pictures again."""

from .checkpoint import load_checkpoint
from .evaluation import evaluate
from .pictures import save_training_curves
from .report import write_run_report
from .run import RunDirectory
from .training_run import REQUIRED_KEYS, saved_config

__all__ = ["draw_pictures", "evaluate_run"]


def _load_run(experiment, run_dir, data_dir=None):
    """The run, its config, data set and compiled model from a checkpoint."""
    run = RunDirectory(run_dir)
    saved = run.read_config(REQUIRED_KEYS)
    config = saved_config(experiment, run, saved)
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
    under the run's lock (refused while another process trains it), then
    runs :meth:`Experiment.final_evaluation` with the loaded model.

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
    experiment.final_evaluation(run, model, data, config, verbose)
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
