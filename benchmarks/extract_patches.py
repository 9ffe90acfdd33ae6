"""Patch extraction against a numpy slice-copy loop of the same patches.

Runs each Keras backend in its own process, in its compiled mode (JAX jit,
TensorFlow ``jit_compile=True``, PyTorch eager), and prints the ratio
backend time / numpy time, measured side by side in the same process.

    python benchmarks/extract_patches.py            # all backends
    python benchmarks/extract_patches.py --quick    # fewer repetitions

Results go to ``benchmarks/results/extract_patches.{json,md}``.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
BACKENDS = ("jax", "tensorflow", "torch")
# (batch, side, channels, n_patches, patch side): the core issue's cases.
CONFIGURATIONS = [(8, 1500, 1, 10, 50), (4, 3000, 3, 16, 100)]


def numpy_patches(x, offsets, size):
    """The baseline: one slice copy per patch into a preallocated array."""
    batch, n = offsets.shape[:2]
    out = np.zeros((batch, n, size, size, x.shape[-1]), dtype=x.dtype)
    for b in range(batch):
        for i in range(n):
            r, c = offsets[b, i]
            out[b, i] = x[b, r:r + size, c:c + size]
    return out


def compiled_extract(size):
    """``extract_patches`` in the active backend's compiled mode."""
    import keras

    from ats.ops import extract_patches

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(lambda x, o: extract_patches(x, o, (size, size)))
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda x, o: extract_patches(x, o, (size, size)),
                           jit_compile=True)
    return lambda x, o: extract_patches(x, o, (size, size))


def block(result):
    """Wait for an asynchronous result (JAX dispatches asynchronously)."""
    if hasattr(result, "block_until_ready"):
        result.block_until_ready()
    return result


def timings(fn, repeats):
    fn()  # warm-up: compilation
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def measure_backend(repeats):
    """Measure every configuration in this process's backend."""
    import keras
    from keras import ops

    rng = np.random.default_rng(0)
    rows = []
    for batch, side, channels, n, size in CONFIGURATIONS:
        x = rng.integers(0, 255, size=(batch, side, side, channels))
        x = x.astype("float32")
        offsets = rng.integers(0, side - size, size=(batch, n, 2))
        offsets = offsets.astype("int32")
        reference = numpy_patches(x, offsets, size)
        x_tensor = ops.convert_to_tensor(x)
        offsets_tensor = ops.convert_to_tensor(offsets)
        extract = compiled_extract(size)
        result = ops.convert_to_numpy(extract(x_tensor, offsets_tensor))
        np.testing.assert_array_equal(result, reference)

        ours = timings(lambda: block(extract(x_tensor, offsets_tensor)),
                       repeats)
        baseline = timings(lambda: numpy_patches(x, offsets, size), repeats)
        rows.append({
            "backend": keras.backend.backend(),
            "input": f"{batch}x{side}x{side}x{channels}",
            "patches": f"{n} of {size}x{size}",
            "ats_ms": 1000 * float(np.median(ours)),
            "ats_min_ms": 1000 * float(np.min(ours)),
            "ats_max_ms": 1000 * float(np.max(ours)),
            "numpy_ms": 1000 * float(np.median(baseline)),
            "ratio": float(np.median(ours) / np.median(baseline)),
        })
    return rows


def write_results(rows, path_stem):
    RESULTS.mkdir(exist_ok=True)
    path_stem.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    lines = ["| backend | input | patches | ATS ms (min-max) | numpy ms | "
             "ratio |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['input']} | {r['patches']} | "
            f"{r['ats_ms']:.2f} ({r['ats_min_ms']:.2f}-{r['ats_max_ms']:.2f})"
            f" | {r['numpy_ms']:.2f} | {r['ratio']:.2f} |")
    path_stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 repetitions instead of 20")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    repeats = 3 if args.quick else 20

    if args.worker:
        json.dump(measure_backend(repeats), sys.stdout)
        return

    rows = []
    for backend in BACKENDS:
        env = {**os.environ, "KERAS_BACKEND": backend,
               "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, __file__, "--worker"] + \
            (["--quick"] if args.quick else [])
        output = subprocess.run(command, env=env, check=True,
                                capture_output=True, text=True).stdout
        rows.extend(json.loads(output.strip().splitlines()[-1]))
    print(write_results(rows, RESULTS / "extract_patches"))


if __name__ == "__main__":
    main()
