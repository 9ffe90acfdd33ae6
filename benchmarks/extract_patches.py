"""Patch extraction against a numpy slice-copy loop of the same patches.

``ats.ops.extract_patches`` in the backend's compiled mode (JAX ``jit``,
TensorFlow ``jit_compile=True``, PyTorch eager) against ``numpy_patches``, one
slice copy per patch into a preallocated array, both timed in the same
process (one per backend), on the configurations of the core issue. The
result is first checked to equal numpy's. Ratio = backend time / numpy time
(below 1: faster than numpy).

    python benchmarks/extract_patches.py [--quick] [--backends jax,torch]
"""

import compiled
import numpy as np
import reporting
import timing
from command_line import RunOptions, main

NAME = "extract_patches"
TITLE = "Patch extraction against a numpy slice copy"
# (batch, side, channels, n_patches, patch side): the core issue's cases.
CONFIGURATIONS = [(8, 1500, 1, 10, 50), (4, 3000, 3, 16, 100)]
QUICK_CONFIGURATIONS = CONFIGURATIONS[:1]
REPEATS, QUICK_REPEATS, WARMUP = 20, 3, 2


def numpy_patches(x, offsets, size):
    """The baseline: one slice copy per patch into a preallocated array."""
    batch, n = offsets.shape[:2]
    out = np.zeros((batch, n, size, size, x.shape[-1]), dtype=x.dtype)
    for b in range(batch):
        for i in range(n):
            r, c = offsets[b, i]
            out[b, i] = x[b, r : r + size, c : c + size]
    return out


def measure(configurations=CONFIGURATIONS, repeats=REPEATS, warmup=WARMUP):
    """Time every configuration in this process's backend against numpy.

    Args:
        configurations: ``(batch, side, channels, n_patches, patch_side)``
            tuples.
        repeats: int, timed calls of each.
        warmup: int, untimed calls first (compilation).

    Returns:
        list of dicts, one per configuration: ``ats_ms`` and ``numpy_ms``
        (``timing.summarize``) and ``ratio`` of their medians.
    """
    rng = np.random.default_rng(0)
    return [
        _measure_configuration(rng, *configuration, repeats, warmup)
        for configuration in configurations
    ]


def _measure_configuration(rng, batch, side, channels, n, size, repeats, warmup):
    """``measure``'s row of one configuration, on random inputs from ``rng``."""
    from keras import ops

    from ats.ops import extract_patches

    x = rng.random((batch, side, side, channels), dtype=np.float32)
    offsets = rng.integers(0, side - size, size=(batch, n, 2)).astype("int32")
    x_tensor = ops.convert_to_tensor(x)
    offsets_tensor = ops.convert_to_tensor(offsets)
    extract = compiled.compile_function(
        lambda x, offsets: extract_patches(x, offsets, (size, size))
    )
    np.testing.assert_array_equal(
        ops.convert_to_numpy(extract(x_tensor, offsets_tensor)),
        numpy_patches(x, offsets, size),
    )
    times = timing.interleaved_times(
        {
            "ats": lambda: timing.block(extract(x_tensor, offsets_tensor)),
            "numpy": lambda: numpy_patches(x, offsets, size),
        },
        repeats,
        warmup,
    )
    ats = timing.summarize(times["ats"], 1000)
    baseline = timing.summarize(times["numpy"], 1000)
    return {
        **compiled.backend_and_mode(),
        "input": f"{batch}x{side}x{side}x{channels}",
        "patches": f"{n} of {size}x{size}",
        "ats_ms": ats,
        "numpy_ms": baseline,
        "ratio": timing.ratio(ats, baseline),
    }


def run(options=None, configurations=None):
    """Measure every backend in its own process; write the results.

    Args:
        options: ``command_line.RunOptions`` (default: all backends, the
            reference configuration); ``options.quick`` means only the
            smaller configuration, 3 repetitions; ``options.output``
            receives ``extract_patches.{json,md}``.
        configurations: list of ``CONFIGURATIONS``-like tuples, or None
            (the mode's default).

    Returns:
        The JSON payload written.
    """
    options = options or RunOptions()
    configurations = configurations or (
        QUICK_CONFIGURATIONS if options.quick else CONFIGURATIONS
    )
    settings = {
        "configurations": configurations,
        "repeats": QUICK_REPEATS if options.quick else REPEATS,
        "warmup": WARMUP,
    }
    machine = reporting.machine_description()
    rows = []
    for backend in options.backends:
        measured = options.runner(NAME, "measure", settings, backend)
        options.log(
            "  "
            + ", ".join(f"{backend} {r['input']}: {r['ratio']:.2f}" for r in measured)
        )
        rows += measured
    payload = reporting.payload(NAME, options.quick, machine, settings, rows)
    reporting.write_results(NAME, payload, report(payload), options.output)
    return payload


def summary_table(payload):
    """The Markdown table of extraction times and ratios."""
    return reporting.markdown_table(
        ["backend", "input", "patches", "ATS ms", "numpy ms", "ratio ATS/numpy"],
        [
            [
                r["backend"],
                r["input"],
                r["patches"],
                reporting.format_stats(r["ats_ms"], 2),
                reporting.format_stats(r["numpy_ms"], 2),
                f"**{r['ratio']:.2f}**",
            ]
            for r in payload["rows"]
        ],
    )


def report(payload):
    """The Markdown report of a ``run`` payload."""
    settings = payload["settings"]
    method = (
        f"Median (min-max) of {settings['repeats']} calls after "
        f"{settings['warmup']} warm-up, both timed in alternation in one "
        "process per backend."
    )
    return reporting.markdown_report(TITLE, payload, [method, summary_table(payload)])


if __name__ == "__main__":
    main(run, __doc__)
