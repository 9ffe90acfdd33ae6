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

import harness

NAME = "overhead"
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
        (``harness.summarize`` of the step times, ms), ``ratio`` (of their
        medians) and ``round_ratios`` (summary of the per-round ratios).
    """
    import setups

    steps = {
        model: setups.training_step(model, side, batch_size)
        for model in ("ats", "pre-extracted")
    }
    times = harness.interleaved_times(steps, repeats, warmup)
    ats = harness.summarize(times["ats"], 1000)
    pre_extracted = harness.summarize(times["pre-extracted"], 1000)
    name = harness.backend()
    return {
        "backend": name,
        "mode": harness.MODES[name],
        "side": side,
        "batch_size": batch_size,
        "ats_ms": ats,
        "pre_extracted_ms": pre_extracted,
        "ratio": harness.ratio(ats, pre_extracted),
        "round_ratios": harness.summarize(
            [a / p for a, p in zip(times["ats"], times["pre-extracted"])]
        ),
    }


def run(
    backends=harness.BACKENDS,
    quick=False,
    output=harness.RESULTS,
    side=None,
    batch_size=None,
    log=print,
    runner=harness.run_in_subprocess,
):
    """Measure every backend in its own process; write ``overhead.{json,md}``.

    Args:
        backends: backend names.
        quick: bool, the smoke configuration (smaller batch, fewer rounds).
        output: the results directory.
        side, batch_size: int or None (the mode's default).
        log: callable receiving progress lines.
        runner: how to run a measurement (``harness.run_in_subprocess``;
            tests pass ``harness.run_in_process``).

    Returns:
        The JSON payload written.
    """
    default_side, default_batch, repeats, warmup = (
        (QUICK_SIDE, QUICK_BATCH_SIZE, QUICK_REPEATS, QUICK_WARMUP)
        if quick
        else (SIDE, BATCH_SIZE, REPEATS, WARMUP)
    )
    side, batch = side or default_side, batch_size or default_batch
    machine = harness.machine_description()
    rows = []
    for backend in backends:
        row = runner(
            NAME,
            "measure",
            {"side": side, "batch_size": batch, "repeats": repeats, "warmup": warmup},
            backend,
        )
        log(f"  {backend}: ATS / pre-extracted = {row['ratio']:.2f}")
        rows.append(row)
    payload = {
        "benchmark": NAME,
        "quick": quick,
        "machine": machine,
        "settings": {
            "side": side,
            "batch_size": batch,
            "repeats": repeats,
            "warmup": warmup,
            "goal_ratio": GOAL_RATIO,
        },
        "rows": rows,
    }
    harness.write_results(NAME, payload, report(payload), output)
    return payload


def summary_table(payload):
    """The Markdown table of the step times and their ratio."""
    return harness.markdown_table(
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
                harness.format_stats(r["ats_ms"]),
                harness.format_stats(r["pre_extracted_ms"]),
                f"**{r['ratio']:.2f}**"
                + ("" if r["ratio"] <= GOAL_RATIO else " (above goal)"),
                harness.format_stats(r["round_ratios"], 2),
            ]
            for r in payload["rows"]
        ],
    )


def report(payload):
    """The Markdown report of a ``run`` payload."""
    settings = payload["settings"]
    return "\n\n".join(
        filter(
            None,
            [
                "## Overhead of sampling, extraction and expectation",
                "**Quick smoke run: not reference figures.**"
                if payload["quick"]
                else "",
                "One training step of the ATS model against the same attention and "
                "feature networks fed pre-extracted patches, timed in alternation in "
                f"one process: median (min-max) of {settings['repeats']} steps each "
                f"after {settings['warmup']} warm-up. Goal: ratio <= "
                f"{settings['goal_ratio']:.2f}.",
                summary_table(payload),
                "Machine: " + harness.describe_machine_markdown(payload["machine"]),
            ],
        )
    )


if __name__ == "__main__":
    harness.main(run, __doc__)
