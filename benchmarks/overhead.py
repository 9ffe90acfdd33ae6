"""The overhead of attention sampling's machinery in a training step.

The ``paper`` preset's ATS model (``[x_low, x_high]``) against the same
attention and feature networks fed pre-extracted patches (``[x_low,
patches]``, ``setups.py``'s ``"pre-extracted"`` model): what the second one
lacks is the sampling, the patch extraction and the unbiased expectation.
Both run in the same process, with the same batch size, in the backend's
compiled mode, their steps timed in alternation so a change of the machine's
load hits both alike. The ratio ATS / pre-extracted is that of the median
step times; the median (min-max) of the per-round ratios is reported too.
Goal: at most ``GOAL_RATIO``.

    python benchmarks/overhead.py [--quick] [--backends jax,torch]
"""

import compiled
import reporting
import timing
from command_line import RunOptions, main

NAME = "overhead"
TITLE = "Overhead of sampling, extraction and expectation"
SIDE, BATCH_SIZE, REPEATS, WARMUP = 1500, 8, 30, 2
QUICK_SIDE, QUICK_BATCH_SIZE, QUICK_REPEATS, QUICK_WARMUP = 500, 2, 3, 1
GOAL_RATIO = 1.10


def measure(side, batch_size, repeats=REPEATS, warmup=WARMUP):
    """Step times of the ATS and the pre-extracted models, in this process.

    Args:
        side: int, the image side in pixels.
        batch_size: int.
        repeats: int, rounds of one timed step of each model.
        warmup: int >= 1, untimed steps of each model first.

    Returns:
        dict: the configuration, ``ats_ms`` and ``pre_extracted_ms``
        (``timing.summarize`` of the step times, ms), ``ratio`` (of their
        medians) and ``round_ratios`` (summary of the per-round ratios).
    """
    import setups

    steps = {
        model: setups.training_step(model, side, batch_size)
        for model in ("ats", "pre-extracted")
    }
    times = timing.interleaved_times(steps, repeats, warmup)
    ats = timing.summarize(times["ats"], 1000)
    pre_extracted = timing.summarize(times["pre-extracted"], 1000)
    return {
        **compiled.backend_and_mode(),
        "side": side,
        "batch_size": batch_size,
        "ats_ms": ats,
        "pre_extracted_ms": pre_extracted,
        "ratio": timing.ratio(ats, pre_extracted),
        "round_ratios": timing.summarize(
            [a / p for a, p in zip(times["ats"], times["pre-extracted"])]
        ),
    }


def run(options=None, side=None, batch_size=None):
    """Measure every backend in its own process; write ``overhead.{json,md}``.

    Args:
        options: ``command_line.RunOptions`` (default: all backends, the
            reference configuration); ``options.quick`` means a smaller
            image and batch and fewer rounds.
        side, batch_size: int or None (the mode's default).

    Returns:
        The JSON payload written.
    """
    options = options or RunOptions()
    default_side, default_batch, repeats, warmup = (
        (QUICK_SIDE, QUICK_BATCH_SIZE, QUICK_REPEATS, QUICK_WARMUP)
        if options.quick
        else (SIDE, BATCH_SIZE, REPEATS, WARMUP)
    )
    side, batch = side or default_side, batch_size or default_batch
    configuration = {
        "side": side,
        "batch_size": batch,
        "repeats": repeats,
        "warmup": warmup,
    }
    machine = reporting.machine_description()
    rows = []
    for backend in options.backends:
        row = options.runner(NAME, "measure", configuration, backend)
        options.log(f"  {backend}: ATS / pre-extracted = {row['ratio']:.2f}")
        rows.append(row)
    settings = {**configuration, "goal_ratio": GOAL_RATIO}
    payload = reporting.payload(NAME, options.quick, machine, settings, rows)
    reporting.write_results(NAME, payload, report(payload), options.output)
    return payload


def summary_table(payload):
    """The Markdown table of the step times and their ratio."""
    return reporting.markdown_table(
        [
            "backend",
            "image",
            "batch",
            "ATS step ms",
            "pre-extracted step ms",
            "ratio ATS/pre-extracted",
            "per-round ratios",
        ],
        [
            [
                r["backend"],
                f"{r['side']}x{r['side']}",
                r["batch_size"],
                reporting.format_stats(r["ats_ms"]),
                reporting.format_stats(r["pre_extracted_ms"]),
                f"**{r['ratio']:.2f}**"
                + ("" if r["ratio"] <= GOAL_RATIO else " (above goal)"),
                reporting.format_stats(r["round_ratios"], 2),
            ]
            for r in payload["rows"]
        ],
    )


def report(payload):
    """The Markdown report of a ``run`` payload."""
    settings = payload["settings"]
    method = (
        "One training step of the ATS model against the same attention and "
        "feature networks fed pre-extracted patches, timed in alternation in "
        f"one process: median (min-max) of {settings['repeats']} steps each "
        f"after {settings['warmup']} warm-up. Goal: ratio <= "
        f"{settings['goal_ratio']:.2f}."
    )
    return reporting.markdown_report(TITLE, payload, [method, summary_table(payload)])


if __name__ == "__main__":
    main(run, __doc__)
