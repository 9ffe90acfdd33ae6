"""Test error against wall-clock training time: the paper's claim, side by side.

On Megapixel MNIST at image sides where the full-image CNN can be trained to
convergence on a CPU, train the three models of the experiment
(``ats.experiments.megapixel_mnist``) to convergence and record their test
error after every epoch against their cumulative training time:

* ``ats``: attention sampling, the ``quick`` preset's configuration
  (``train_config("quick", "ats")``: 24 patches of 40x40, its networks,
  optimizer, content prior ``attention_prior`` and learning-rate cool-down
  ``cooldown_epochs``);
* ``full-cnn``: the same feature network applied to the whole image;
* ``low-cnn``: a CNN on the low-resolution view alone.

Every model trains with the ``quick`` preset's hyper-parameters
(``train_config("quick", model)``: batch, optimizer, filters, ``cache``),
for ``--epochs`` epochs or until its training time reaches
``--budget-minutes``, once per seed, each run in a process of its own
(``isolation.run_in_subprocess``) on one backend, the models in turn for
every seed so that a change of the machine's load hits them alike. The data
are the ``quick`` preset's (noise, scale, training images) at the given
side, with ``N_TEST`` test images. The low view keeps the preset's scale,
0.25 (62x62 at 250, 125x125 at 500), so that a digit looks the same to the
attention network at every side and only the area it searches grows.

The clock of a run is the sum of its epochs' training time (``metrics.csv``'s
``train_seconds``): the training steps, the batches' rendering, and the
compilation of the training step in the first epoch (its first epoch's
excess over the later ones is reported). The evaluation after every epoch,
the process's start, the model's construction and the final evaluation are
not counted.

Reported per side: the test error against the training time of every model
(mean over the seeds, and the worst seed) in one figure; each model's best
test error; the training time each model needs to reach the target error
(the best error of the full CNN's mean curve, or ``--target``), and the ratio
full CNN / ATS of those times.

    python benchmarks/convergence.py --sides 250,500 --seeds 0,1,2
    python benchmarks/convergence.py --quick    # a smoke run, a few minutes

Long: a run of the full CNN at 500x500 takes hours. Finished runs are kept
in ``--work-dir`` and reused by a later invocation with the same settings,
so an interrupted benchmark continues where it stopped. Results:
``benchmarks/results/convergence.{json,md,png}`` (``--quick``:
``benchmarks/results/quick/``).
"""

import argparse
import contextlib
import json
import os
import shlex
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import reporting
from command_line import RunOptions
from compiled import BACKENDS

NAME = "convergence"
TITLE = (
    "Test error against training time: ATS, the full-image CNN, the low-resolution CNN"
)
PRESET = "quick"
MODELS = ("ats", "full-cnn", "low-cnn")
LABELS = {
    "ats": "attention sampling",
    "full-cnn": "full-image CNN",
    "low-cnn": "low-resolution CNN",
}
# The figure's ticks: test errors, and training times in seconds.
ERROR_TICKS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.9)
TIME_TICKS = (1, 2, 5, 10, 20, 60, 120, 300, 600, 1200, 3600, 7200, 14400, 28800)
COLOURS = {"ats": "tab:blue", "full-cnn": "tab:red", "low-cnn": "tab:green"}
DEFAULT_BACKEND = "jax"
SIDES, SEEDS, EPOCHS, N_TEST = (250, 500), (0, 1, 2), 20, 1000
# The smallest side that five 28x28 digits fit; a few images, two epochs.
QUICK_SIDES, QUICK_SEEDS, QUICK_EPOCHS = (100,), (0, 1), 2
QUICK_N_TRAIN, QUICK_N_TEST = 64, 32
# A model keeps its rendered images in memory (the preset's ``cache``) only
# if they take at most this much.
CACHE_BUDGET_GIB = 6.0
# The file of a finished run that says with which settings it ran.
MARKER = "convergence.json"
CLOCK = (
    "sum of the epochs' training time (metrics.csv train_seconds: the "
    "training steps, the batches' rendering and, in the first epoch, the "
    "training step's compilation); the evaluation after every epoch, the "
    "process's start, the model's construction and the final evaluation are "
    "not counted"
)


# ---------------------------------------------------------------------------
# Functions run in a process of their own (through options.runner)


def prepare_data(out, side, scale=None, n_train=None, n_test=None):
    """Generate (or reuse) the data set of one side, in this process.

    Args:
        out: str, the data set's directory; a data set of other settings
            there (from an earlier invocation) is replaced.
        side: int, the images' width and height.
        scale, n_train, n_test: ``MegapixelMNISTConfig`` fields (None: the
            ``quick`` preset's).

    Returns:
        The data set's ``MegapixelMNISTConfig`` as a dict.
    """
    from ats.experiments import megapixel_mnist

    fields = {"width": side, "height": side, "scale": scale}
    fields.update(n_train=n_train, n_test=n_test)
    try:
        data = megapixel_mnist.make_data(PRESET, out, progress=False, **fields)
    except FileExistsError:
        shutil.rmtree(out)
        data = megapixel_mnist.make_data(PRESET, out, progress=False, **fields)
    return data.config.to_dict()


def cache_gib(data, views):
    """The memory of a run's rendered images, in GiB.

    Args:
        data: a ``MegapixelMNISTConfig`` dict.
        views: the views the model reads, from ``"low"`` and ``"high"``.

    Returns:
        float: 4 bytes per pixel of those views of every training and test
        image.
    """
    height, width, scale = data["height"], data["width"], data["scale"]
    pixels = {
        "high": height * width,
        "low": round(height * scale) * round(width * scale),
    }
    images = data["n_train"] + data["n_test"]
    return 4 * images * sum(pixels[view] for view in views) / 2**30


def within_budget(history, budget_s):
    """The epochs of a run up to the first that reaches the time budget.

    Args:
        history: the run's ``metrics.csv`` rows, in order.
        budget_s: float seconds of training, or None (no budget).

    Returns:
        The rows up to the first one at which the cumulative
        ``train_seconds`` reaches ``budget_s`` (all of them without a
        budget): a row after it is the step that training stopped in.

    Example:
        >>> rows = [{"train_seconds": s} for s in (3.0, 2.0, 0.1)]
        >>> len(within_budget(rows, 4.0)), len(within_budget(rows, None))
        (2, 3)
    """
    if budget_s is None:
        return list(history)
    total = 0.0
    for k, row in enumerate(history):
        total += row["train_seconds"]
        if total >= budget_s:
            return list(history[: k + 1])
    return list(history)


def _experiment_keeping_its_model():
    """Megapixel MNIST's experiment, keeping the model it builds (so that a
    time budget can stop its training)."""
    from ats.experiments import megapixel_mnist

    class Experiment(megapixel_mnist.Experiment):
        model = None

        def build_model(self, config, data, setup=None):
            self.model = super().build_model(config, data, setup)
            return self.model

    return Experiment()


@contextlib.contextmanager
def _budget_watch(run, budget_s, epochs, experiment, interval=0.5):
    """Within the block, stop training once the budget is spent.

    A thread reads the run's ``metrics.csv`` every ``interval`` seconds;
    once its finished epochs have trained for ``budget_s`` seconds it sets
    Keras' ``stop_training`` on the model, which ends ``fit`` after the step
    in progress (that partial epoch is left out by ``within_budget``).
    """
    if budget_s is None:
        yield
        return
    done = threading.Event()

    def watch():
        while not done.wait(interval):
            rows = run.read_metrics()
            spent = sum(row["train_seconds"] for row in rows) >= budget_s
            if spent and len(rows) < epochs and experiment.model is not None:
                experiment.model.stop_training = True
                return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _run_row(history, results, config, budget_s):
    """A run's measurements from its kept epochs and its results."""
    epochs, total = [], 0.0
    for row in history:
        total += row["train_seconds"]
        epochs.append(
            {
                "epoch": row["epoch"],
                "test_error": row["test_error"],
                "train_seconds": row["train_seconds"],
                "test_seconds": row["test_seconds"],
                "seconds": total,
            }
        )
    first = epochs[0]["train_seconds"]
    later = (
        statistics.median(e["train_seconds"] for e in epochs[1:])
        if len(epochs) > 1
        else None
    )
    best = min(epochs, key=lambda e: e["test_error"])
    return {
        "model": config.model,
        "seed": config.seed,
        "epochs": epochs,
        "stopped_by": "budget" if len(epochs) < config.epochs else "epochs",
        "budget_s": budget_s,
        "cache": config.cache,
        "train_images": results["train_images"],
        "parameters": results["parameters"],
        "first_epoch_seconds": first,
        "later_epoch_seconds": later,
        "first_epoch_extra_seconds": None if later is None else first - later,
        "ms_per_image": 1000 * (later or first) / results["train_images"],
        "training_seconds": total,
        "best_error": best["test_error"],
        "best_epoch": best["epoch"],
        "final_error": epochs[-1]["test_error"],
        "peak_memory_mib": results["peak_memory_mb"],
        "process_seconds": results["process_seconds"],
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "config": config.to_dict(),
    }


def train_run(
    data_dir,
    run_dir,
    data,
    model,
    seed,
    epochs,
    budget_s=None,
    cache_budget_gib=CACHE_BUDGET_GIB,
):
    """Train one model on one side with one seed, in this process.

    ``ats.experiments.megapixel_mnist.train`` with the ``quick`` preset's
    configuration of ``model``, its ``cache`` only if the rendered images
    take at most ``cache_budget_gib``. A run of the same settings finished
    in ``run_dir`` before is reused; anything else there is replaced.

    Args:
        data_dir: str, the data set (``prepare_data``).
        run_dir: str, the run's directory.
        data: the data set's configuration dict (``prepare_data``'s).
        model: ``"ats"``, ``"full-cnn"`` or ``"low-cnn"``.
        seed: int.
        epochs: int, the most epochs to train.
        budget_s: float, stop once the finished epochs have trained this
            many seconds (None: train every epoch).
        cache_budget_gib: float, the most memory the cached images take.

    Returns:
        dict: ``backend``, ``side``, the model and seed, ``epochs`` (per
        epoch ``test_error``, ``train_seconds``, ``test_seconds`` and the
        cumulative training time ``seconds``), ``stopped_by`` (``"epochs"``
        or ``"budget"``), the first epoch's time, the later ones' median
        and the first's excess over them, milliseconds per training image,
        the best and final test errors, the peak memory of the process, its
        load average at the end, the run's configuration and ``reused``.
    """
    import keras

    from ats.experiments import megapixel_mnist
    from ats.models.megapixel_mnist import MODELS as VIEWS
    from ats.training.run import RunDirectory, write_json

    config = megapixel_mnist.train_config(PRESET, model, epochs=epochs, seed=seed)
    cache = config.cache and cache_gib(data, VIEWS[model]) <= cache_budget_gib
    config = config.with_overrides({"cache": cache})
    backend = keras.backend.backend()
    request = {
        "backend": backend,
        "data": data,
        "train": config.to_dict(),
        "budget_s": budget_s,
    }
    marker = Path(run_dir) / MARKER
    if marker.is_file():
        saved = json.loads(marker.read_text())
        if saved["request"] == request:
            return {**saved["row"], "reused": True}
    shutil.rmtree(run_dir, ignore_errors=True)
    experiment = _experiment_keeping_its_model()
    run = RunDirectory(run_dir)
    with _budget_watch(run, budget_s, epochs, experiment):
        results = experiment.train(
            data_dir,
            run_dir,
            preset=PRESET,
            verbose=0,
            model=model,
            epochs=epochs,
            seed=seed,
            cache=cache,
        )
    history = within_budget(run.read_metrics(), budget_s)
    row = {
        "backend": backend,
        "side": data["width"],
        **_run_row(history, results, config, budget_s),
    }
    write_json(marker, {"request": request, "row": row})
    return {**row, "reused": False}


# ---------------------------------------------------------------------------
# The curves, the targets and the ratios (in the driver process)


def _measured(rows):
    return [row for row in rows if "epochs" in row]


def mean_curve(runs):
    """The mean curve of a model's runs (one per seed).

    Args:
        runs: rows of ``train_run`` of one model and side.

    Returns:
        list of ``{"epoch", "seconds", "error", "worst_error"}`` over the
        epochs every run finished: the mean cumulative training time, the
        mean test error and the largest one.
    """
    n = min(len(run["epochs"]) for run in runs)
    curve = []
    for k in range(n):
        epochs = [run["epochs"][k] for run in runs]
        curve.append(
            {
                "epoch": k + 1,
                "seconds": statistics.fmean(e["seconds"] for e in epochs),
                "error": statistics.fmean(e["test_error"] for e in epochs),
                "worst_error": max(e["test_error"] for e in epochs),
            }
        )
    return curve


def first_reaching(points, target, key):
    """The first of ``points`` whose ``key`` is at most ``target``, or None."""
    return next((p for p in points if p[key] <= target + 1e-12), None)


def _target(curves, target):
    if target is not None:
        return {"error": target, "source": "given (--target)"}
    if "full-cnn" in curves:
        best = min(point["error"] for point in curves["full-cnn"])
        return {"error": best, "source": "the full CNN's best (mean over seeds)"}
    return None


def _time_to_target(curve, runs, target):
    reached = first_reaching(curve, target, "error")
    per_seed = [first_reaching(run["epochs"], target, "test_error") for run in runs]
    seconds = [None if p is None else p["seconds"] for p in per_seed]
    return {
        "seconds": None if reached is None else reached["seconds"],
        "epoch": None if reached is None else reached["epoch"],
        "per_seed_seconds": seconds,
        "reached_by": sum(s is not None for s in seconds),
        "slowest_seconds": None if None in seconds else max(seconds),
    }


def summarize(rows, target=None):
    """Every model's curve, best error and time to the target, per side.

    Args:
        rows: ``train_run`` rows (failed runs are left out).
        target: float test error to reach, or None for the best test error
            of the full CNN's mean curve.

    Returns:
        ``(summaries, ratios)``. ``summaries``: per side and model, the
        seeds, ``curve`` (``mean_curve``), ``best_error`` and
        ``final_error`` (``mean`` over the seeds and ``worst`` seed;
        ``best_error`` also of the ``mean_curve``), ``target`` (``error``
        and ``source``, or None) and ``time_to_target`` (on the mean curve
        ``seconds`` and ``epoch``, ``per_seed_seconds``, ``reached_by`` and
        ``slowest_seconds``; None values where not reached). ``ratios``:
        per side the times of the full CNN and of ATS to the target and
        ``ratio`` (full CNN / ATS), None where one did not reach it.
    """
    groups = {}
    for row in _measured(rows):
        groups.setdefault(row["side"], {}).setdefault(row["model"], []).append(row)
    summaries, ratios = [], []
    for side, models in groups.items():
        curves = {model: mean_curve(runs) for model, runs in models.items()}
        side_target = _target(curves, target)
        times = {}
        for model, runs in models.items():
            curve = curves[model]
            bests = [run["best_error"] for run in runs]
            finals = [run["final_error"] for run in runs]
            to_target = (
                None
                if side_target is None
                else _time_to_target(curve, runs, side_target["error"])
            )
            times[model] = None if to_target is None else to_target["seconds"]
            summaries.append(
                {
                    "side": side,
                    "model": model,
                    "seeds": [run["seed"] for run in runs],
                    "curve": curve,
                    "best_error": {
                        "mean": statistics.fmean(bests),
                        "worst": max(bests),
                        "mean_curve": min(point["error"] for point in curve),
                    },
                    "final_error": {
                        "mean": statistics.fmean(finals),
                        "worst": max(finals),
                    },
                    "target": side_target,
                    "time_to_target": to_target,
                }
            )
        cnn, ats = times.get("full-cnn"), times.get("ats")
        if side_target is not None and "full-cnn" in models and "ats" in models:
            ratios.append(
                {
                    "side": side,
                    "target": side_target,
                    "full_cnn_seconds": cnn,
                    "ats_seconds": ats,
                    "ratio": cnn / ats if cnn is not None and ats else None,
                }
            )
    return summaries, ratios


# ---------------------------------------------------------------------------
# The driver


def run(
    options=None,
    sides=None,
    seeds=None,
    models=MODELS,
    epochs=None,
    budget_minutes=None,
    target=None,
    n_train=None,
    n_test=None,
    scale=None,
    work_dir=None,
    cache_budget_gib=CACHE_BUDGET_GIB,
    command=None,
):
    """Train every (side, seed, model) in its own process; write the results.

    Args:
        options: ``command_line.RunOptions`` with one backend (default:
            JAX, the reference configuration); ``options.output`` receives
            ``convergence.{json,md,png}``.
        sides, seeds: the image sides and the seeds (None: the mode's).
        models: names from ``MODELS``.
        epochs: the most epochs per run (None: the mode's).
        budget_minutes: float, stop a run once it has trained this long
            (at the end of the epoch in which it is reached), or None.
        target: float test error whose time to reach is reported, or None
            for the full CNN's best.
        n_train, n_test, scale: the data set's (None: the mode's, or the
            ``quick`` preset's).
        work_dir: where the data sets and runs are kept (default:
            ``$ATS_CONVERGENCE_WORK_DIR`` or ``/tmp/ats-convergence-benchmark``;
            ``quick/`` in it for ``--quick``).
        cache_budget_gib: float, the most memory a run's cached images take.
        command: str, the command line that reproduces the run, or None.

    Returns:
        The JSON payload written.
    """
    options = options or RunOptions(backends=(DEFAULT_BACKEND,))
    if len(options.backends) != 1:
        raise ValueError(f"one backend, got {options.backends}")
    [backend] = options.backends
    quick = options.quick
    if not models or set(models) - set(MODELS):
        raise ValueError(f"models must be some of {MODELS}, got {list(models)}")
    if quick:
        sides, seeds = sides or QUICK_SIDES, seeds or QUICK_SEEDS
        epochs, n_train = epochs or QUICK_EPOCHS, n_train or QUICK_N_TRAIN
        n_test = n_test or QUICK_N_TEST
    sides, seeds = tuple(sides or SIDES), tuple(seeds or SEEDS)
    epochs, n_test = epochs or EPOCHS, n_test or N_TEST
    budget_s = None if budget_minutes is None else 60.0 * budget_minutes
    work_dir = Path(
        work_dir
        or os.environ.get("ATS_CONVERGENCE_WORK_DIR", "/tmp/ats-convergence-benchmark")
    )
    work_dir = work_dir / "quick" if quick else work_dir
    machine = reporting.machine_description()
    start = time.perf_counter()
    rows, data = [], {}
    for side in sides:
        data_dir = work_dir / str(side) / "data"
        options.log(f"{side}x{side} (runs in {work_dir / str(side)}):")
        data[str(side)] = options.runner(
            NAME,
            "prepare_data",
            {
                "out": str(data_dir),
                "side": side,
                "scale": scale,
                "n_train": n_train,
                "n_test": n_test,
            },
            backend,
        )
        for seed in seeds:
            for model in models:
                kwargs = {
                    "data_dir": str(data_dir),
                    "run_dir": str(work_dir / str(side) / f"{model}-seed{seed}"),
                    "data": data[str(side)],
                    "model": model,
                    "seed": seed,
                    "epochs": epochs,
                    "budget_s": budget_s,
                    "cache_budget_gib": cache_budget_gib,
                }
                rows.append(_train(options, backend, side, kwargs))
    summaries, ratios = summarize(rows, target)
    settings = {
        "preset": PRESET,
        "backend": backend,
        "sides": list(sides),
        "seeds": list(seeds),
        "models": list(models),
        "epochs": epochs,
        "budget_minutes": budget_minutes,
        "target": target,
        "data": data,
        "cache_budget_gib": cache_budget_gib,
        "work_dir": str(work_dir),
        "clock": CLOCK,
        "seconds": time.perf_counter() - start,
        "command": command,
    }
    payload = reporting.payload(
        NAME,
        quick,
        machine,
        settings,
        rows,
        summaries=summaries,
        ratios=ratios,
        machine_at_end=reporting.machine_description(),
    )
    reporting.write_results(NAME, payload, report(payload), options.output)
    plot(payload, options.output)
    return payload


def _train(options, backend, side, kwargs):
    """One run through ``options.runner``; a failed process becomes a row."""
    model, seed = kwargs["model"], kwargs["seed"]
    start = time.perf_counter()
    try:
        row = options.runner(NAME, "train_run", kwargs, backend)
    except RuntimeError as error:
        options.log(f"  {side}x{side} {model} seed {seed}: FAILED {error}")
        return {
            "backend": backend,
            "side": side,
            "model": model,
            "seed": seed,
            "failed": str(error)[-500:],
        }
    if not row["reused"]:
        row["wall_seconds"] = time.perf_counter() - start
    options.log(
        f"  {side}x{side} {model} seed {seed}: {len(row['epochs'])} epoch(s) "
        f"(stopped by {row['stopped_by']}), best test error "
        f"{row['best_error']:.2%} (epoch {row['best_epoch']}), "
        f"{duration(row['training_seconds'])} of training"
        + (
            " (reused)"
            if row["reused"]
            else f", {duration(row['wall_seconds'])} in all"
        )
    )
    return row


# ---------------------------------------------------------------------------
# The report and the figure


def duration(seconds):
    """``"42 s"``, ``"12.5 min"`` or ``"2.1 h"``; ``"-"`` for None."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _ratio_cell(payload, side):
    entry = next((r for r in payload["ratios"] if r["side"] == side), None)
    if entry is None:
        return "-"
    if entry["ratio"] is not None:
        return f"**{entry['ratio']:.1f}x**"
    return "ATS does not reach it" if entry["ats_seconds"] is None else "-"


def summary_table(payload):
    """The Markdown table of best errors, times to the target and ratios."""
    table = []
    for entry in payload["summaries"]:
        target, to_target = entry["target"], entry["time_to_target"]
        best, n = entry["best_error"], len(entry["seeds"])
        if to_target is None:
            reached = seeds = "-"
        else:
            reached = (
                f"{duration(to_target['seconds'])} (epoch {to_target['epoch']})"
                if to_target["epoch"]
                else "not reached"
            )
            seeds = f"{to_target['reached_by']}/{n}" + (
                f" (slowest {duration(to_target['slowest_seconds'])})"
                if to_target["slowest_seconds"] is not None
                else ""
            )
        table.append(
            [
                f"{entry['side']}x{entry['side']}",
                "-" if target is None else f"{target['error']:.2%}",
                entry["model"],
                f"{best['mean']:.2%} ({best['worst']:.2%})",
                reached,
                seeds,
                _ratio_cell(payload, entry["side"]) if entry["model"] == "ats" else "",
            ]
        )
    return reporting.markdown_table(
        [
            "image",
            "target error",
            "model",
            "best test error: mean of the seeds (worst seed)",
            "training time to the target: mean curve",
            "seeds reaching it (slowest)",
            "time full CNN / ATS",
        ],
        table,
    )


def _runs_table(payload):
    rows = []
    for r in payload["rows"]:
        if "failed" in r:
            rows.append([f"{r['side']}x{r['side']}", r["model"], r["seed"], "failed"])
            continue
        rows.append(
            [
                f"{r['side']}x{r['side']}",
                r["model"],
                f"{r['seed']} (reused)" if r["reused"] else r["seed"],
                f"{len(r['epochs'])} ({r['stopped_by']})",
                f"{r['best_error']:.2%} ({r['best_epoch']})",
                f"{r['final_error']:.2%}",
                f"{r['first_epoch_seconds']:.1f}",
                "-"
                if r["later_epoch_seconds"] is None
                else f"{r['later_epoch_seconds']:.1f}",
                f"{r['ms_per_image']:.2f}",
                duration(r["training_seconds"]),
                "yes" if r["cache"] else "no",
                f"{r['parameters']:,}",
                f"{r['peak_memory_mib']:.0f}",
                duration(r["process_seconds"]),
                r["load_average_at_end"],
            ]
        )
    return reporting.markdown_table(
        [
            "image",
            "model",
            "seed",
            "epochs (stopped by)",
            "best test error (epoch)",
            "final test error",
            "epoch 1 s (with compilation)",
            "later epochs s (median)",
            "ms per training image",
            "training time",
            "images cached",
            "parameters",
            "peak RSS MiB",
            "whole run (with evaluation)",
            "load at end",
        ],
        rows,
    )


def report(payload):
    """The Markdown report of a ``run`` payload."""
    settings = payload["settings"]
    data = "; ".join(
        f"{side}x{side}: low view {round(d['height'] * d['scale'])}x"
        f"{round(d['width'] * d['scale'])} (scale {d['scale']}), {d['n_noise']} "
        f"noise scribbles, {d['n_train']} training and {d['n_test']} test images"
        for side, d in settings["data"].items()
    )
    stop = f"{settings['epochs']} epochs" + (
        f" or {settings['budget_minutes']:g} min of training, whichever first"
        if settings["budget_minutes"]
        else ""
    )
    method = (
        f"Megapixel MNIST ({data}). Each model with the `{settings['preset']}` "
        f"preset's hyper-parameters, trained for {stop}, seeds "
        f"{', '.join(map(str, settings['seeds']))}, each run in a process of its "
        f"own on {settings['backend']} (Keras's default compiled mode), the "
        "models in turn for every seed. Test error after every epoch (ATS: "
        f"sampled patches). Training time: the {settings['clock']}. Target: "
        "the full CNN's best test error (the minimum of its mean curve over "
        "the seeds) unless one is given; a model reaches it at the end of the "
        "first epoch whose error is at most the target (errors are measured "
        "once an epoch, so a time is an upper bound)."
    )
    parts = [
        method,
        summary_table(payload),
        f"![test error against training time]({NAME}.png)",
    ]
    if settings.get("command"):
        parts.insert(0, f"Reproduce with `{settings['command']}`.")
    end = payload["machine_at_end"]
    return reporting.markdown_report(
        TITLE,
        payload,
        parts,
        details=[
            f"Load average at the end {end['load_average'][0]} ({end['date']}); "
            f"the benchmark took {duration(settings['seconds'])}.",
            "### Per run",
            _runs_table(payload),
        ],
    )


def _error_tick(error):
    """A tick's label: ``"5%"``, ``"0.5%"``."""
    return f"{error:.0%}" if error >= 0.01 else f"{error:.1%}"


def _time_tick(seconds):
    """A tick's label: ``"30 s"``, ``"2 min"``, ``"4 h"``."""
    if seconds < 60:
        return f"{seconds:g} s"
    if seconds < 3600:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


def plot(payload, output=reporting.RESULTS):
    """Test error against training time, one panel per side.

    Writes ``convergence.png`` into ``output``: for every model its mean
    curve over the seeds (solid) and its worst seed's error at every epoch
    (dashed), the target error (dotted) and where each mean curve reaches it
    (a star); log-log axes.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import (
        FixedLocator,
        FuncFormatter,
        NullFormatter,
    )

    by_side = {}
    for entry in payload["summaries"]:
        by_side.setdefault(entry["side"], []).append(entry)
    figure, axes = plt.subplots(
        1, max(len(by_side), 1), figsize=(6 * max(len(by_side), 1), 4.6), squeeze=False
    )
    for axis, (side, entries) in zip(axes[0], by_side.items()):
        for entry in entries:
            model, curve = entry["model"], entry["curve"]
            seconds = [p["seconds"] for p in curve]
            colour = COLOURS[model]
            axis.plot(
                seconds,
                [p["error"] for p in curve],
                "o-",
                color=colour,
                markersize=3,
                label=f"{LABELS[model]} ({len(entry['seeds'])} seeds: mean)",
            )
            axis.plot(
                seconds,
                [p["worst_error"] for p in curve],
                "--",
                color=colour,
                linewidth=0.9,
                alpha=0.7,
            )
            to_target = entry["time_to_target"]
            if to_target and to_target["seconds"] is not None:
                point = curve[to_target["epoch"] - 1]
                axis.plot(
                    point["seconds"], point["error"], "*", color=colour, markersize=13
                )
        axis.plot([], [], "--", color="grey", linewidth=0.9, label="worst seed")
        target = entries[0]["target"]
        if target is not None:
            axis.axhline(
                target["error"],
                color="grey",
                linestyle=":",
                label=f"target {target['error']:.2%}",
            )
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.yaxis.set_major_locator(FixedLocator(ERROR_TICKS))
        axis.yaxis.set_major_formatter(FuncFormatter(lambda e, _: _error_tick(e)))
        axis.yaxis.set_minor_formatter(NullFormatter())
        axis.xaxis.set_major_locator(FixedLocator(TIME_TICKS))
        axis.xaxis.set_major_formatter(FuncFormatter(lambda s, _: _time_tick(s)))
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("cumulative training time")
        axis.set_ylabel("test error")
        axis.set_title(f"{side}x{side}, {payload['settings']['backend']}")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    return reporting.save_figure(
        figure,
        "Megapixel MNIST: test error against training time",
        payload["quick"],
        Path(output) / f"{NAME}.png",
    )


# ---------------------------------------------------------------------------
# The command line


def _numbers(kind, minimum=0):
    """An argparse type: comma-separated ``kind`` values >= ``minimum``."""

    def parse(text):
        try:
            values = tuple(kind(part) for part in text.split(",") if part.strip())
        except ValueError:
            values = ()
        if not values or min(values) < minimum:
            raise argparse.ArgumentTypeError(
                f"comma-separated {kind.__name__}s >= {minimum}, got {text!r}"
            )
        return values

    return parse


def _positive(kind):
    """An argparse type: one ``kind`` value > 0."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise argparse.ArgumentTypeError(f"a {kind.__name__} > 0, got {text!r}")
        return value

    return parse


def _fraction(text):
    """An argparse type: a test error in (0, 1)."""
    value = _positive(float)(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"a fraction in (0, 1), got {text!r}")
    return value


def _models(text):
    """An argparse type: comma-separated names of ``MODELS``."""
    models = tuple(m.strip() for m in text.split(",") if m.strip())
    if not models or set(models) - set(MODELS):
        raise argparse.ArgumentTypeError(f"some of {','.join(MODELS)}, got {text!r}")
    return models


def argument_parser():
    """The command line's parser."""
    results, quick_results = (
        path.relative_to(reporting.BENCHMARKS.parent)
        for path in (reporting.RESULTS, reporting.QUICK_RESULTS)
    )
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--quick",
        action="store_true",
        help=f"smoke configuration: side {QUICK_SIDES[0]}, {QUICK_N_TRAIN} "
        f"training images, {QUICK_EPOCHS} epochs, seeds "
        f"{','.join(map(str, QUICK_SEEDS))}",
    )
    add(
        "--backend",
        choices=BACKENDS,
        default=DEFAULT_BACKEND,
        help="the Keras backend (default: %(default)s)",
    )
    add(
        "--output",
        type=Path,
        default=None,
        help=f"results directory (default: {results}, or {quick_results} with --quick)",
    )
    add(
        "--sides",
        type=_numbers(int, 84),
        default=None,
        help=f"comma-separated image sides (default: {','.join(map(str, SIDES))})",
    )
    add(
        "--seeds",
        type=_numbers(int),
        default=None,
        help=f"comma-separated seeds (default: {','.join(map(str, SEEDS))})",
    )
    add(
        "--models",
        type=_models,
        default=MODELS,
        help=f"comma-separated models (default: {','.join(MODELS)})",
    )
    add(
        "--epochs",
        type=_positive(int),
        default=None,
        help=f"the most epochs of a run (default: {EPOCHS})",
    )
    add(
        "--budget-minutes",
        type=_positive(float),
        default=None,
        help="stop a run at the end of the epoch in which its training time "
        "reaches this (default: no budget)",
    )
    add(
        "--target",
        type=_fraction,
        default=None,
        help="the test error (a fraction, e.g. 0.05) whose time to reach is "
        "reported (default: the full CNN's best)",
    )
    add(
        "--n-train",
        type=_positive(int),
        default=None,
        help="training images (default: the quick preset's)",
    )
    add(
        "--n-test",
        type=_positive(int),
        default=None,
        help=f"test images (default: {N_TEST})",
    )
    add(
        "--scale",
        type=_fraction,
        default=None,
        help="the scale of the low view (default: the quick preset's)",
    )
    add(
        "--work-dir",
        type=Path,
        default=None,
        help="where the data sets and runs are kept and reused (default: "
        "$ATS_CONVERGENCE_WORK_DIR or /tmp/ats-convergence-benchmark)",
    )
    add(
        "--cache-budget-gib",
        type=_positive(float),
        default=CACHE_BUDGET_GIB,
        help="the most memory a run's cached images may take (default: %(default)s)",
    )
    return parser


def main():
    """Parse the command line, run, print the summary; exit 1 if a run failed."""
    args = argument_parser().parse_args()
    options = RunOptions(
        backends=(args.backend,),
        quick=args.quick,
        output=args.output
        or (reporting.QUICK_RESULTS if args.quick else reporting.RESULTS),
    )
    payload = run(
        options,
        sides=args.sides,
        seeds=args.seeds,
        models=args.models,
        epochs=args.epochs,
        budget_minutes=args.budget_minutes,
        target=args.target,
        n_train=args.n_train,
        n_test=args.n_test,
        scale=args.scale,
        work_dir=args.work_dir,
        cache_budget_gib=args.cache_budget_gib,
        command=shlex.join(["python", "benchmarks/convergence.py", *sys.argv[1:]]),
    )
    print("\n" + summary_table(payload))
    print(f"\nResults in {options.output}")
    failed = [
        f"{r['side']} {r['model']} seed {r['seed']}"
        for r in payload["rows"]
        if "failed" in r
    ]
    if failed:
        sys.exit(f"{len(failed)} run(s) failed: " + ", ".join(failed))


if __name__ == "__main__":
    main()
