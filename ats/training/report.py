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
    "Peak memory is the maximum resident set size (`ru_maxrss`) of the "
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


def _top_k_error(results):
    top_k = results["test"]["top_k"]
    return None if top_k is None else top_k["error"]


def _data_line(data):
    noise = f"{data['n_noise']} noise scribbles" if data["noise"] else "no noise"
    low_h, low_w = (
        round(data["height"] * data["scale"]),
        round(data["width"] * data["scale"]),
    )
    return (
        f"{data['width']}x{data['height']} images ({noise}), low "
        f"resolution {low_w}x{low_h} (scale {data['scale']}), "
        f"{data['n_train']} training and {data['n_test']} test images"
    )


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
    model = results["model"]
    lines = [f"# Megapixel MNIST: `{model}` (preset `{config['preset']}`)", ""]
    test = results["test"]
    lines += [
        "| test set | sampled patches | most attended patches |",
        "|---|---|---|",
        f"| error | {_percent(test['sampled']['error'])} | "
        f"{_percent(_top_k_error(results))} |",
        f"| loss | {test['sampled']['loss']:.4f} | "
        + ("—" if test["top_k"] is None else f"{test['top_k']['loss']:.4f}")
        + " |",
        "",
    ]
    if test["top_k"] is None:
        lines += ["This model does not sample patches: it has one test error.", ""]
    else:
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
        f"- data: {_data_line(config['data'])}",
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


def compare_runs(run_dirs, out):
    """Write a Markdown report of several finished runs side by side.

    Args:
        run_dirs: paths of run directories (with ``results.json``).
        out: the Markdown file to write; links to the runs are relative to
            it.

    Returns:
        The text of the report.
    """
    out = Path(out)
    if not run_dirs:
        raise ValueError("`run_dirs` must name at least one run directory")
    rows, data = [], None
    for run_dir in run_dirs:
        run = RunDirectory(run_dir)
        config, results = run.read_config(), run.read_results()
        if results is None:
            raise FileNotFoundError(
                f"run {str(run.path)!r} has no results.json: it has not "
                "finished (resume it with --resume)"
            )
        data = data or config["data"]
        images = results["train_images"]
        link = Path(os.path.relpath(run.report_path, out.parent)).as_posix()
        rows.append(
            f"| [`{results['model']}`]({link}) | "
            f"{_percent(results['test']['sampled']['error'])} | "
            f"{_percent(_top_k_error(results))} | {results['epochs']} "
            f"of {images:,} images | "
            f"{_seconds(results['seconds_per_epoch'] * 1000 / images)} | "
            f"{_memory(results['peak_memory_mb'])} | "
            f"{results['parameters']:,} |"
        )
    lines = [
        "# Megapixel MNIST: attention sampling and the baselines",
        "",
        f"Data: {_data_line(data)}.",
        "",
        "| model | test error (sampled patches) | test error (most "
        "attended patches) | epochs | time per 1,000 images | peak "
        "memory | parameters |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "`ats`: attention sampling; `full-cnn`: the same feature "
        "network applied to the whole high-resolution image; "
        "`low-cnn`: a CNN on the low-resolution view alone. Models "
        "trained for fewer epochs or images are not converged: compare "
        "their time per image and peak memory.",
        "",
        _TIME_NOTE + " " + _MEMORY_NOTE,
        "",
    ]
    text = "\n".join(lines)
    atomic_write(out, lambda f: f.write(text.encode()))
    return text
