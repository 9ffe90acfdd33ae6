"""Markdown reports: of one run, and of several runs side by side.

Both read only the files of the run directories (``config.json``,
``results.json``, ``metrics.csv``, ``pictures/``), so they can be written
again at any time.
"""

import os
from pathlib import Path

from .run import RunDirectory, atomic_write

__all__ = ["write_run_report", "compare_runs"]

_MEMORY_NOTE = (
    "Peak memory is the peak resident set size (Linux `VmHWM`, elsewhere "
    "`ru_maxrss`) of the "
    "process that trained and evaluated the model (data rendering and the "
    "backend's runtime included); each model is trained in a process of its "
    "own."
)
_TIME_NOTE = (
    "Time per epoch is the median wall time of the training steps of an "
    "epoch (the first epoch, which includes compilation, is listed "
    "separately), per 1,000 training images in the table of several runs; "
    "evaluating the test set after each epoch is not included."
)


def _percent(value):
    return "—" if value is None else f"{100 * value:.1f}%"


def _seconds(value):
    return "—" if value is None else f"{value:.1f} s"


def _memory(value):
    return "—" if value is None else f"{value / 1024:.2f} GiB"


def _top_k(results, metric):
    top_k = (results["test"] or {}).get("top_k")
    return None if top_k is None else top_k.get(metric)


def _sampled(results, metric):
    return (results["test"] or {}).get("sampled", {}).get(metric)


def _metric_cell(metric, value):
    if value is None:
        return "—"
    return _percent(value) if metric == "error" else f"{value:.4f}"


def _title(config):
    """``config.json``'s title, or its experiment's name."""
    return config.get("title") or config.get("experiment") or "Training run"


def _test_table(results):
    test = results["test"]
    if test is None:
        return ["The run has no test images.", ""]
    metrics = [k for k in test["sampled"] if k not in ("seconds", "draws")]
    # The error first: it is what the runs are compared by.
    metrics.sort(key=lambda k: k != "error")
    return [
        "| test set | sampled patches | most attended patches |",
        "|---|---|---|",
        *(
            f"| {metric} | {_metric_cell(metric, test['sampled'][metric])} | "
            f"{_metric_cell(metric, _top_k(results, metric))} |"
            for metric in metrics
        ),
        "",
    ]


def write_run_report(run):
    """Write ``report.md`` of a run from its files.

    Args:
        run: a ``RunDirectory`` (or its path) with ``config.json`` and
            ``results.json``.

    Returns:
        The path of the report.
    """
    run = run if isinstance(run, RunDirectory) else RunDirectory(run)
    config, results = run.read_config(), run.read_results()
    if results is None:
        raise FileNotFoundError(
            f"run {str(run.path)!r} has no results.json: it has not finished"
        )
    train = config["train"]
    heading = f"# {_title(config)}: `{results['model']}`"
    if config.get("preset"):
        heading += f" (preset `{config['preset']}`)"
    lines = [heading, "", *_test_table(results)]
    tested = results["test"] is not None
    if tested and results["test"]["top_k"] is None:
        lines += ["This model does not sample patches: it has one test error.", ""]
    elif tested:
        lines += [
            f"With sampled patches each test image is classified from "
            f"{train['n_patches']} patches drawn from the attention "
            "(as in training); with the most attended patches, from "
            f"the top-{train['n_patches']} attention positions.",
            "",
        ]
    env = results["environment"]
    lines += [
        f"- epochs: {results['epochs']}, batch size {train['batch_size']}, "
        f"Adam learning rate {train['learning_rate']}",
        f"- time per epoch: {_seconds(results['seconds_per_epoch'])} "
        f"(first epoch {_seconds(results['first_epoch_seconds'])}; test "
        f"evaluation {_seconds(results['test_seconds_per_epoch'])})",
        f"- peak memory: {_memory(results['peak_memory_mb'])}",
        f"- parameters: {results['parameters']:,}",
        f"- data: {config.get('data_summary', config['data_dir'])}",
        f"- backend: {env['backend']} (Keras {env['keras']}, Python "
        f"{env['python']}, {env['cpus']} CPUs)",
        "",
        _TIME_NOTE + " " + _MEMORY_NOTE,
        "",
    ]
    pictures = run.pictures_dir
    for name, caption in (
        ("final_sampled.png", "Where it looks (sampled)"),
        ("final_top_k.png", "Most attended patches"),
        ("curves.png", "Training curves"),
    ):
        if (pictures / name).is_file():
            lines += [f"## {caption}", "", f"![{caption}](pictures/{name})", ""]
    epochs = sorted(pictures.glob("epoch_*.png"))
    if epochs:
        lines += [
            "Pictures after every epoch: "
            + ", ".join(f"[{p.stem}](pictures/{p.name})" for p in epochs),
            "",
        ]
    text = "\n".join(lines)
    atomic_write(run.report_path, lambda f: f.write(text.encode()))
    return run.report_path


def compare_runs(run_dirs, out, title=None, notes=None):
    """Write a Markdown report of several finished runs side by side.

    Args:
        run_dirs: paths of run directories (with ``results.json``).
        out: the Markdown file to write; links to the runs are relative to
            it.
        title: the report's title (default: the first run's experiment
            title, "side by side").
        notes: optional paragraph under the table (e.g. what the models
            are).

    Returns:
        The text of the report.
    """
    out = Path(out)
    if not run_dirs:
        raise ValueError("`run_dirs` must name at least one run directory")
    rows, first = [], None
    for run_dir in run_dirs:
        run = RunDirectory(run_dir)
        config, results = run.read_config(), run.read_results()
        if results is None:
            raise FileNotFoundError(
                f"run {str(run.path)!r} has no results.json: it has not "
                "finished (resume it with --resume)"
            )
        first = first or config
        images = results["train_images"]
        link = Path(os.path.relpath(run.report_path, out.parent)).as_posix()
        rows.append(
            f"| [`{results['model']}`]({link}) | "
            f"{_percent(_sampled(results, 'error'))} | "
            f"{_percent(_top_k(results, 'error'))} | {results['epochs']} "
            f"of {images:,} images | "
            f"{_seconds(results['seconds_per_epoch'] * 1000 / images)} | "
            f"{_memory(results['peak_memory_mb'])} | "
            f"{results['parameters']:,} |"
        )
    lines = [
        f"# {title or _title(first) + ': the runs side by side'}",
        "",
        f"Data: {first.get('data_summary', first['data_dir'])}.",
        "",
        "| model | test error (sampled patches) | test error (most "
        "attended patches) | epochs | time per 1,000 images | peak "
        "memory | parameters |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        *([notes, ""] if notes else []),
        _TIME_NOTE + " " + _MEMORY_NOTE,
        "",
    ]
    text = "\n".join(lines)
    atomic_write(out, lambda f: f.write(text.encode()))
    return text
