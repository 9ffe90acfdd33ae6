"""Patch extraction against a numpy slice-copy loop of the same patches.

``ats.ops.extract_patches`` in the backend's compiled mode (JAX ``jit``,
TensorFlow ``jit_compile=True``, PyTorch eager) against ``numpy_patches``, one
slice copy per patch into a preallocated array, both timed in the same
process (one per backend), on the configurations of the core issue. The
result is first checked to equal numpy's. Ratio = backend time / numpy time
(below 1: faster than numpy).

    python benchmarks/extract_patches.py [--quick] [--backends jax,torch]
"""

import harness
import numpy as np

NAME = "extract_patches"
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
        (``harness.summarize``) and ``ratio`` of their medians.
    """
    from keras import ops

    from ats.ops import extract_patches

    rng = np.random.default_rng(0)
    rows = []
    for batch, side, channels, n, size in configurations:
        x = rng.random((batch, side, side, channels), dtype=np.float32)
        offsets = rng.integers(0, side - size, size=(batch, n, 2))
        offsets = offsets.astype("int32")
        x_tensor = ops.convert_to_tensor(x)
        offsets_tensor = ops.convert_to_tensor(offsets)
        extract = harness.compile_function(
            lambda x, o, size=size: extract_patches(x, o, (size, size))
        )
        np.testing.assert_array_equal(
            ops.convert_to_numpy(extract(x_tensor, offsets_tensor)),
            numpy_patches(x, offsets, size),
        )

        times = harness.interleaved_times(
            {
                "ats": lambda: harness.block(extract(x_tensor, offsets_tensor)),
                "numpy": lambda: numpy_patches(x, offsets, size),
            },
            repeats,
            warmup,
        )
        ats = harness.summarize(times["ats"], 1000)
        baseline = harness.summarize(times["numpy"], 1000)
        name = harness.backend()
        rows.append(
            {
                "backend": name,
                "mode": harness.MODES[name],
                "input": f"{batch}x{side}x{side}x{channels}",
                "patches": f"{n} of {size}x{size}",
                "ats_ms": ats,
                "numpy_ms": baseline,
                "ratio": harness.ratio(ats, baseline),
            }
        )
    return rows


def run(
    backends=harness.BACKENDS,
    quick=False,
    output=harness.RESULTS,
    configurations=None,
    log=print,
    runner=harness.run_in_subprocess,
):
    """Measure every backend in its own process; write the results.

    Args:
        backends: backend names.
        quick: bool, only the smaller configuration, 3 repetitions.
        output: directory of ``extract_patches.{json,md}``.
        configurations: list of ``CONFIGURATIONS``-like tuples, or None
            (the mode's default).
        log: callable receiving progress lines.
        runner: how to run a measurement (``harness.run_in_subprocess``;
            tests pass ``harness.run_in_process``).

    Returns:
        The JSON payload written.
    """
    configurations = configurations or (
        QUICK_CONFIGURATIONS if quick else CONFIGURATIONS
    )
    repeats = QUICK_REPEATS if quick else REPEATS
    machine = harness.machine_description()
    rows = []
    for backend in backends:
        rows += runner(
            NAME,
            "measure",
            {"configurations": configurations, "repeats": repeats, "warmup": WARMUP},
            backend,
        )
        log(
            "  "
            + ", ".join(
                f"{backend} {r['input']}: {r['ratio']:.2f}"
                for r in rows
                if r["backend"] == backend
            )
        )
    payload = {
        "benchmark": NAME,
        "quick": quick,
        "machine": machine,
        "settings": {
            "configurations": configurations,
            "repeats": repeats,
            "warmup": WARMUP,
        },
        "rows": rows,
    }
    harness.write_results(NAME, payload, report(payload), output)
    return payload


def summary_table(payload):
    """The Markdown table of extraction times and ratios."""
    return harness.markdown_table(
        ["backend", "input", "patches", "ATS ms", "numpy ms", "ratio ATS/numpy"],
        [
            [
                r["backend"],
                r["input"],
                r["patches"],
                harness.format_stats(r["ats_ms"], 2),
                harness.format_stats(r["numpy_ms"], 2),
                f"**{r['ratio']:.2f}**",
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
                "## Patch extraction against a numpy slice copy",
                "**Quick smoke run: not reference figures.**"
                if payload["quick"]
                else "",
                f"Median (min-max) of {settings['repeats']} calls after "
                f"{settings['warmup']} warm-up, both timed in alternation in one "
                "process per backend.",
                summary_table(payload),
                "Machine: " + harness.describe_machine_markdown(payload["machine"]),
            ],
        )
    )


if __name__ == "__main__":
    harness.main(run, __doc__)
