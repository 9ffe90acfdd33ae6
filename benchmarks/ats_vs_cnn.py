"""Attention sampling against the full-image CNN: time and memory per sample.

On Megapixel-MNIST-shaped inputs of growing side, one training step of the
``paper`` preset's ATS model and of the CNN that applies the same feature
network to the whole image (``setups.py``), each configuration in its own
process (``isolation.run_in_subprocess``) so that its peak memory is its own.
Reported per sample (per step / batch size), with the ratio CNN / ATS:

* **time**: median (min-max) of ``train_on_batch`` after warm-up, in the
  backend's compiled mode. The inputs are already backend tensors, so it is
  the step's time, not the host's copy of the batch.
* **memory**: the growth of the process's resident set size (RSS) caused by
  training, once it runs: the peak RSS over the timed steps minus the RSS
  just before the first step (the backend imported, the model built, the
  inputs allocated). Before both readings the allocator's free pages are
  released (``memory.release_free_memory``), so the RSS is memory in use.
  Everything training keeps counts in full (compiled code, gradients and
  optimizer slots, the backend's caches), which penalises the small model,
  ATS. What it leaves out is the transient of the first, compiling step:
  the compiler's working memory, which XLA frees once the step is compiled.
  That figure is reported too (``with_compilation``: the peak over every
  step, the first included, minus the same baseline).

Batch size: the same for both models at a side, ``batch_size(side)``: at
most ``MAX_BATCH`` images and at most ``MAX_BATCH`` 1500x1500 images' worth
of pixels. The CNN is run at a side only while it fits the memory budget:
its memory at the side is predicted from the largest side measured so far
on that backend (per-sample memory grows with the pixel count); a side it
would not fit is reported as "does not fit" with the prediction, and ATS is
still measured there. A process that dies (e.g. killed out of memory) is
reported as failed.

    python benchmarks/ats_vs_cnn.py [--quick] [--backends jax,torch]
"""

from pathlib import Path

import compiled
import reporting
import timing
from command_line import RunOptions, main

NAME = "ats_vs_cnn"
TITLE = "Attention sampling vs the full-image CNN, per sample"
SIDES = (500, 1000, 1500, 3000, 6000, 9000)
QUICK_SIDES = (500,)
MAX_BATCH, QUICK_MAX_BATCH = 8, 2
MEMORY_BUDGET_GIB = 16.0
# Timed steps: REPEATS, or at least MIN_REPEATS once they took BUDGET_S.
REPEATS, MIN_REPEATS, BUDGET_S, WARMUP = 5, 3, 60.0, 2
QUICK_REPEATS, QUICK_WARMUP = 2, 1
# The goal: at 1500x1500, CNN / ATS >= 10 on time and on memory.
GOAL_SIDE, GOAL_RATIO = 1500, 10.0
MODELS = ("ats", "cnn")


def batch_size(side, max_batch=MAX_BATCH):
    """The batch size at ``side``: <= ``max_batch`` images and pixels of
    ``max_batch`` 1500x1500 images, at least 1."""
    return max(1, min(max_batch, max_batch * 1500**2 // side**2))


def measure(model, side, batch_size, repeats=REPEATS, warmup=WARMUP, budget_s=None):
    """Time and memory of training steps of one model, in this process.

    Meant for a fresh process (``isolation.run_in_subprocess``) so that the
    memory figures are this configuration's alone.

    Args:
        model: ``"ats"`` or ``"cnn"`` (see ``setups.py``).
        side: int, the image side in pixels.
        batch_size: int.
        repeats: int, timed steps.
        warmup: int >= 1, untimed steps first (the first one compiles).
        budget_s: optional float, stop after ``MIN_REPEATS`` timed steps
            once they took this long (``timing.time_calls``).

    Returns:
        dict: the configuration; ``step_s`` and ``per_sample_ms``
        (``timing.summarize`` of the step times); ``memory`` in MiB with
        ``baseline_mib`` (RSS before the first step), ``peak_mib`` (peak RSS
        over the timed steps), ``increment_mib`` (their difference),
        ``per_sample_mib`` (increment / batch size), ``with_compilation``
        (``peak_mib``, ``increment_mib`` and ``per_sample_mib`` over every
        step, the compiling one included) and ``method``.
    """
    import memory
    import setups

    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    step = setups.training_step(model, side, batch_size)

    memory.release_free_memory()
    probe = memory.MemoryProbe().start()
    timing.time_calls(step, 0, warmup)
    warm = probe.stop()
    released = memory.release_free_memory()
    probe.start()
    times = timing.time_calls(step, repeats, 0, budget_s, min(MIN_REPEATS, repeats))
    steady = probe.stop()

    baseline = warm["baseline_mib"]
    increment = steady["peak_mib"] - baseline
    with_compilation = max(warm["peak_mib"], steady["peak_mib"]) - baseline
    return {
        **compiled.backend_and_mode(),
        "model": model,
        "side": side,
        "batch_size": batch_size,
        "step_s": timing.summarize(times),
        "per_sample_ms": timing.summarize(times, 1000 / batch_size),
        "memory": {
            "baseline_mib": baseline,
            "peak_mib": steady["peak_mib"],
            "increment_mib": increment,
            "per_sample_mib": increment / batch_size,
            "with_compilation": {
                "peak_mib": baseline + with_compilation,
                "increment_mib": with_compilation,
                "per_sample_mib": with_compilation / batch_size,
            },
            "method": steady["method"]
            + (
                ", free heap pages released (malloc_trim) before the "
                "baseline and before the timed steps"
                if released
                else ", free heap pages not released (no malloc_trim)"
            ),
        },
    }


def predicted_gib(measured, side, batch):
    """The CNN's training memory at ``side`` and ``batch``, in GiB,
    extrapolated from a ``measure`` row of a smaller side (per-sample
    memory proportional to the pixel count)."""
    per_sample = measured["memory"]["per_sample_mib"] / 1024
    return per_sample * batch * (side / measured["side"]) ** 2


def run(options=None, sides=None, memory_budget_gib=MEMORY_BUDGET_GIB):
    """Measure every (backend, side, model) in its own process; write results.

    Args:
        options: ``command_line.RunOptions`` (default: all backends, the
            reference configuration); ``options.output`` receives
            ``ats_vs_cnn.{json,md,png}``.
        sides: increasing image sides, or None for the mode's default.
        memory_budget_gib: float, the largest predicted CNN memory to run.

    Returns:
        The JSON payload written.
    """
    options = options or RunOptions()
    quick = options.quick
    sides = tuple(sorted(sides or (QUICK_SIDES if quick else SIDES)))
    max_batch = QUICK_MAX_BATCH if quick else MAX_BATCH
    repeats, warmup, budget_s = (
        (QUICK_REPEATS, QUICK_WARMUP, None) if quick else (REPEATS, WARMUP, BUDGET_S)
    )
    steps = {"repeats": repeats, "warmup": warmup, "budget_s": budget_s}
    machine = reporting.machine_description()
    rows = []
    for backend in options.backends:
        rows += _backend_rows(
            options, backend, sides, max_batch, steps, memory_budget_gib
        )
    settings = {
        "sides": list(sides),
        "max_batch": max_batch,
        "batch_sizes": {str(s): batch_size(s, max_batch) for s in sides},
        "memory_budget_gib": memory_budget_gib,
        "repeats": repeats,
        "warmup": warmup,
        "min_repeats_over_budget": [MIN_REPEATS, budget_s],
        "time": "train_on_batch wall-clock, compiled mode, inputs "
        "already backend tensors",
        "memory": "peak RSS over the timed steps minus RSS before the "
        "first step, free heap pages released before both; "
        "with_compilation: peak RSS over all steps (first, "
        "compiling one included); one process per configuration",
    }
    payload = reporting.payload(
        NAME, quick, machine, settings, rows, ratios=ratios(rows)
    )
    reporting.write_results(NAME, payload, report(payload), options.output)
    plot(payload, options.output)
    return payload


def _backend_rows(options, backend, sides, max_batch, steps, memory_budget_gib):
    """The rows of one backend: at every side ATS, then the CNN if it fits."""
    rows, largest_cnn = [], None
    for side in sides:
        batch = batch_size(side, max_batch)
        for model in MODELS:
            config = {"model": model, "side": side, "batch_size": batch}
            unmeasured = {"backend": backend, **config}
            if model == "cnn" and largest_cnn is not None:
                predicted = predicted_gib(largest_cnn, side, batch)
                if predicted > memory_budget_gib:
                    rows.append(
                        {**unmeasured, "does_not_fit": True, "predicted_gib": predicted}
                    )
                    options.log(
                        f"  {backend} cnn {side}: does not fit "
                        f"(~{predicted:.1f} GiB predicted)"
                    )
                    continue
            try:
                row = options.runner(NAME, "measure", config | steps, backend)
            except RuntimeError as error:
                rows.append({**unmeasured, "failed": str(error)[-500:]})
                options.log(f"  {backend} {model} {side}: FAILED {error}")
                continue
            rows.append(row)
            if model == "cnn":
                largest_cnn = row
            options.log(
                f"  {backend} {model} {side}x{side} batch {batch}: "
                f"{row['per_sample_ms']['median']:.1f} ms/sample, "
                f"{row['memory']['per_sample_mib']:.1f} MiB/sample"
            )
    return rows


def _measured(rows):
    return [r for r in rows if "step_s" in r]


def ratios(rows):
    """CNN / ATS per (backend, side) where both were measured.

    Returns:
        list of dicts with ``backend``, ``side``, ``batch_size``, ``time``
        (ratio of the median times per sample), ``memory`` (ratio of the
        memory increments per sample) and ``memory_with_compilation`` (the
        same with the compiling step's peak).
    """
    by_key = {(r["backend"], r["side"], r["model"]): r for r in _measured(rows)}
    result = []
    for (backend, side, model), ats in by_key.items():
        cnn = by_key.get((backend, side, "cnn"))
        if model != "ats" or cnn is None:
            continue
        result.append(
            {
                "backend": backend,
                "side": side,
                "batch_size": ats["batch_size"],
                "time": timing.ratio(cnn["per_sample_ms"], ats["per_sample_ms"]),
                "memory": _memory_ratio(cnn["memory"], ats["memory"]),
                "memory_with_compilation": _memory_ratio(
                    cnn["memory"]["with_compilation"], ats["memory"]["with_compilation"]
                ),
            }
        )
    return result


def _memory_ratio(cnn, ats):
    return cnn["per_sample_mib"] / max(ats["per_sample_mib"], 1e-9)


def _cnn_cells(cnn):
    """The CNN's time and memory cells: measured, too large or failed."""
    if cnn is None:
        return ["-", "-"]
    if cnn.get("does_not_fit"):
        return [f"does not fit (~{cnn['predicted_gib']:.0f} GiB)"] * 2
    if cnn.get("failed"):
        return ["failed"] * 2
    return [
        reporting.format_stats(cnn["per_sample_ms"]),
        f"{cnn['memory']['per_sample_mib']:.1f}",
    ]


def summary_table(payload):
    """The Markdown table of per-sample figures and ratios (README's)."""
    by_key = {(r["backend"], r["side"], r["model"]): r for r in payload["rows"]}
    ratio_of = {(r["backend"], r["side"]): r for r in payload["ratios"]}
    table = []
    for backend, side, model in by_key:
        ats = by_key[(backend, side, model)]
        if model != "ats" or "step_s" not in ats:
            continue
        cnn_time, cnn_memory = _cnn_cells(by_key.get((backend, side, "cnn")))
        entry = ratio_of.get((backend, side))
        table.append(
            [
                backend,
                f"{side}x{side}",
                ats["batch_size"],
                reporting.format_stats(ats["per_sample_ms"]),
                cnn_time,
                f"**{entry['time']:.1f}x**" if entry else "-",
                f"{ats['memory']['per_sample_mib']:.1f}",
                cnn_memory,
                f"**{entry['memory']:.1f}x**" if entry else "-",
                f"{entry['memory_with_compilation']:.1f}x" if entry else "-",
            ]
        )
    return reporting.markdown_table(
        [
            "backend",
            "image",
            "batch",
            "ATS ms/sample",
            "CNN ms/sample",
            "time CNN/ATS",
            "ATS MiB/sample",
            "CNN MiB/sample",
            "memory CNN/ATS",
            "memory CNN/ATS with compiling step",
        ],
        table,
    )


def goal_line(payload):
    """Whether the ratios at ``GOAL_SIDE`` reach ``GOAL_RATIO``, in words."""
    at_goal = [r for r in payload["ratios"] if r["side"] == GOAL_SIDE]
    if not at_goal:
        return f"(no {GOAL_SIDE}x{GOAL_SIDE} measurement in this run)"
    verdicts = [
        f"{r['backend']} {r['time']:.1f}x time, {r['memory']:.1f}x memory "
        f"({'met' if min(r['time'], r['memory']) >= GOAL_RATIO else 'not met'}; "
        f"{r['memory_with_compilation']:.1f}x with the compiling step)"
        for r in at_goal
    ]
    return (
        f"Goal at {GOAL_SIDE}x{GOAL_SIDE}, >= {GOAL_RATIO:.0f}x on both: "
        + "; ".join(verdicts)
        + "."
    )


def report(payload):
    """The Markdown report of a ``run`` payload."""
    settings = payload["settings"]
    least, budget_s = settings["min_repeats_over_budget"]
    detail = [
        [
            r["backend"],
            r["mode"],
            r["model"],
            f"{r['side']}x{r['side']}",
            r["batch_size"],
            reporting.format_stats(r["step_s"], 3),
            f"{r['memory']['baseline_mib']:.0f}",
            f"{r['memory']['peak_mib']:.0f}",
            f"{r['memory']['increment_mib']:.0f}",
            f"{r['memory']['with_compilation']['peak_mib']:.0f}",
            f"{r['memory']['with_compilation']['increment_mib']:.0f}",
        ]
        for r in _measured(payload["rows"])
    ]
    failed = [
        f"- {r['backend']} {r['model']} {r['side']}: {r['failed']}"
        for r in payload["rows"]
        if r.get("failed")
    ]
    method = (
        f"One training step (`train_on_batch`), median (min-max) over "
        f"{settings['repeats']} steps after {settings['warmup']} warm-up"
        + (
            f" (stopping after {least} once they took {budget_s:.0f} s)"
            if budget_s
            else ""
        )
        + ", divided by the batch size. Memory: peak RSS over the timed steps "
        "minus RSS before the first step, free heap pages released before "
        "both, divided by the batch size, one process per configuration; "
        "the last column counts the compiling first step's peak too. CNN "
        "sides predicted above "
        f"{settings['memory_budget_gib']:g} GiB are not run."
    )
    return reporting.markdown_report(
        TITLE,
        payload,
        [method, goal_line(payload), summary_table(payload)],
        details=[
            "### Per process (MiB)",
            reporting.markdown_table(
                [
                    "backend",
                    "mode",
                    "model",
                    "image",
                    "batch",
                    "step s",
                    "RSS before",
                    "peak RSS, timed steps",
                    "increment",
                    "peak RSS, all steps",
                    "increment, all steps",
                ],
                detail,
            ),
            "\n".join(failed),
        ],
    )


def plot(payload, output=reporting.RESULTS):
    """Log-log plot of time and memory per sample against the image side.

    Writes ``ats_vs_cnn.png`` into ``output``: ATS solid, CNN dashed, one
    colour per backend, and a dotted guide proportional to the pixel count.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    rows = _measured(payload["rows"])
    sides = sorted({r["side"] for r in rows})
    colours = dict(zip(compiled.BACKENDS, ("tab:blue", "tab:orange", "tab:green")))
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    panels = [
        (
            axes[0],
            lambda r: r["per_sample_ms"]["median"],
            "training time per sample (ms)",
        ),
        (
            axes[1],
            lambda r: max(r["memory"]["per_sample_mib"], 0.01),
            "training memory per sample (MiB)",
        ),
    ]
    for axis, value, label in panels:
        for backend in dict.fromkeys(r["backend"] for r in rows):
            for model, style in (("ats", "o-"), ("cnn", "s--")):
                points = sorted(
                    (r["side"], value(r))
                    for r in rows
                    if (r["backend"], r["model"]) == (backend, model)
                )
                if points:
                    axis.plot(
                        *zip(*points),
                        style,
                        color=colours[backend],
                        label=f"{model.upper()}, {backend}",
                    )
        cnn = sorted((r["side"], value(r)) for r in rows if r["model"] == "cnn")
        if cnn:
            anchor_side, anchor = cnn[0]
            axis.plot(
                sides,
                [anchor * (s / anchor_side) ** 2 for s in sides],
                ":",
                color="grey",
                label="∝ pixel count",
            )
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks(sides)
        axis.xaxis.set_major_formatter(ScalarFormatter())
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("image side (pixels)")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    return reporting.save_figure(
        figure,
        "Attention sampling vs full-image CNN, one training step",
        payload["quick"],
        Path(output) / f"{NAME}.png",
    )


if __name__ == "__main__":
    main(run, __doc__)
