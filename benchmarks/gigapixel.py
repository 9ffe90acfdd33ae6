"""Gigapixel attention sampling: cost follows the patches, not the image.

Two bars of the gigapixel issue:

1. **Flat cost.** Time per training sample and peak process memory of the
   lazy path (``ats.lazy``: attention on a low-resolution pyramid level,
   only the sampled patches read from the TIFF inside each step) stay flat
   (max/min within 1.5x) as the side of a Gigapixel MNIST image on disk
   grows from 1,500 to 100,000 pixels, with a fixed number and size of
   patches. The time ratio comes from all sides timed in alternation in
   one process (so that other work on the machine slows them alike); the
   table's times and the memory come from one process per configuration.
   Beside it: the in-graph path (the whole full-resolution image read and
   passed as ``x_high``) and the full-image CNN, as far as they fit in the
   memory budget. Each configuration runs in a process of its own (clean
   peak memory: ``ats.training.resources.peak_memory_mb``, the process's
   peak resident set size); a step includes reading its batch from disk
   (the low view and the patches, or the whole images).
2. **No read overhead.** Reading 100 random 256x256 patches from level 0 of
   a 20,000 x 20,000 JPEG-tiled TIFF through ``TiffSource.read`` takes
   within 2x the time of tifffile + zarr doing the same slices directly.

    python benchmarks/gigapixel.py            # sides 1,500 to 100,000
    python benchmarks/gigapixel.py --quick    # sides 1,500 to 25,000 (~5 min)

The TIFFs are written (once, then reused) under ``--work-dir``; the full run
needs about 1 GB there. Results: ``benchmarks/results/gigapixel.{json,md,
png}`` (``--quick``: under ``benchmarks/results/quick/``).
"""

import json
import os
import shutil
import statistics
import time
from pathlib import Path

import command_line
import numpy as np
import reporting
import timing

SIDES = (1500, 3000, 6000, 12000, 25000, 50000, 100000)
QUICK_SIDES = (1500, 6000, 25000)
BATCH, N_PATCHES, PATCH = 2, 10, 50
METHODS = ("lazy", "in-graph", "full-cnn")
# Where the in-graph path and the full-image CNN stop in --quick, for time.
QUICK_LIMITS = {"in-graph": 6000, "full-cnn": 1500}
READ_SIDE, READ_PATCH, READ_COUNT = 20000, 256, 100
FLAT_BAR, READ_BAR = 1.5, 2.0


def estimated_gib(method, side):
    """Rough peak memory of a configuration, to skip what cannot fit.

    In-graph: the batch of uint8 images about four times over (decoded,
    stacked, on the device, the step's copy). Full-image CNN: its first
    feature map (32 float32 channels at half the side) about four times
    over (activations and gradients). Plus 1.5 GiB of runtime.
    """
    if method == "lazy":
        return 1.5
    if method == "in-graph":
        return 1.5 + 4 * BATCH * side**2 / 2**30
    return 1.5 + 4 * BATCH * (side / 2) ** 2 * 32 * 4 / 2**30


# ---------------------------------------------------------------------------
# Functions run in subprocesses (through isolation.run_in_subprocess)


def write_dataset(directory, side):
    """Write (or reuse) a Gigapixel MNIST set of BATCH images of ``side``."""
    from ats.datasets.gigapixel_mnist import GigapixelMNIST, GigapixelMNISTConfig

    config = GigapixelMNISTConfig(side=side, n_train=BATCH, n_test=0, seed=1)
    try:
        data = GigapixelMNIST.load(directory)
        if data.config == config:
            return {"reused": True, "seconds": 0.0}
    except (FileNotFoundError, ValueError):
        pass
    shutil.rmtree(directory, ignore_errors=True)
    start = time.perf_counter()
    GigapixelMNIST.write(directory, config, progress=False)
    return {"reused": False, "seconds": time.perf_counter() - start}


def train_steps(method, directory, warmup, repeats):
    """Seconds per training sample and peak memory of one configuration.

    A step reads its batch from the TIFFs (lazy: the low views, cached, and
    the sampled patches inside the step; in-graph and full CNN: the whole
    images) and runs ``train_on_batch``.
    """
    import keras
    import tifffile

    from ats.datasets.gigapixel_mnist import GigapixelMNIST
    from ats.experiments.gigapixel_mnist import build_model
    from ats.models.megapixel_mnist import full_image_cnn
    from ats.training.resources import peak_memory_mb

    data = GigapixelMNIST.load(directory)
    side, low_level = data.config.side, data.config.low_level
    files, y = data.files("train"), data.labels("train")
    low_shape = (data.config.level_sides[low_level],) * 2 + (1,)
    high_shape = (side, side, 1)

    def read_levels(level):
        return np.stack([tifffile.imread(f, level=level) for f in files])[..., None]

    if method == "lazy":
        sequence = data.sequence("train", batch_size=BATCH, patch_size=(PATCH, PATCH))
        model = build_model(
            sequence.sources[0].low_shape,
            n_patches=N_PATCHES,
            patch_size=(PATCH, PATCH),
        )

        def batch():
            return sequence[0][0]
    elif method == "in-graph":
        model = build_model(
            low_shape,
            n_patches=N_PATCHES,
            patch_size=(PATCH, PATCH),
            high_shape=high_shape,
        )

        def batch():
            return [read_levels(low_level), read_levels(0)]
    else:
        model = keras.Sequential(
            [
                keras.Input(high_shape, dtype="uint8"),
                keras.layers.Rescaling(1 / 255),
                full_image_cnn(high_shape),
            ]
        )

        def batch():
            return read_levels(0)

    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")

    def step():
        loss = model.train_on_batch(batch(), y)
        if not np.isfinite(loss):
            raise FloatingPointError(f"{method} at side {side}: loss {loss}")

    times = timing.time_calls(step, repeats, warmup)
    return {
        "seconds_per_sample": statistics.median(times) / BATCH,
        "min_seconds_per_sample": min(times) / BATCH,
        "steps": len(times),
        "peak_rss_mib": peak_memory_mb(),
        "low_shape": list(low_shape),
    }


def lazy_interleaved(directories, warmup, repeats):
    """Seconds per training sample of the lazy path at every side, timed in
    alternation in one process, so that a machine busy with other work
    slows every side alike (the flatness ratio uses these).
    """
    import keras

    from ats.datasets.gigapixel_mnist import GigapixelMNIST
    from ats.experiments.gigapixel_mnist import build_model

    models, steps = {}, {}
    for directory in directories:
        data = GigapixelMNIST.load(directory)
        sequence = data.sequence("train", batch_size=BATCH, patch_size=(PATCH, PATCH))
        low_shape = sequence.sources[0].low_shape
        if low_shape not in models:
            models[low_shape] = build_model(
                low_shape, n_patches=N_PATCHES, patch_size=(PATCH, PATCH)
            )
            models[low_shape].compile(
                keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy"
            )

        def step(sequence=sequence, model=models[low_shape]):
            x, y = sequence[0]
            model.train_on_batch(x, y)

        steps[str(data.config.side)] = step
    times = timing.interleaved_times(steps, repeats, warmup)
    return {
        side: timing.summarize([t / BATCH for t in values])
        for side, values in times.items()
    }


def write_noise_tiff(path, side=READ_SIDE, tile=256):
    """A ``side`` x ``side`` uint8 TIFF of random texture, JPEG tiles.

    Noise keeps every tile's JPEG decode busy (the worst case). Written
    tile by tile; reused if present.
    """
    import tifffile

    path = Path(path)
    if path.is_file():
        return {"reused": True}
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    smooth = np.kron(
        rng.integers(0, 255, (tile // 4, tile // 4)), np.ones((4, 4))
    ).astype(np.uint8)

    def tiles():
        for _ in range((-(-side // tile)) ** 2):
            yield np.clip(
                smooth.astype(np.int16) + rng.integers(-40, 40, (tile, tile)), 0, 255
            ).astype(np.uint8)

    partial = path.with_suffix(".partial")
    with tifffile.TiffWriter(partial, bigtiff=True) as writer:
        writer.write(
            tiles(),
            shape=(side, side),
            dtype=np.uint8,
            tile=(tile, tile),
            compression="jpeg",
            compressionargs={"level": 90},
            photometric="minisblack",
        )
        # Reduced levels (each half the previous: tifffile's pyramid), for
        # TiffSource's low view.
        for level in range(1, 5):
            writer.write(
                np.zeros((side >> level,) * 2, np.uint8),
                tile=(tile, tile),
                compression="jpeg",
                subfiletype=1,
                photometric="minisblack",
            )
    partial.rename(path)
    return {"reused": False}


def read_patches_ratio(path, repeats):
    """``TiffSource.read`` against direct tifffile + zarr slicing.

    Each round draws 100 new random corners and times both readers on them,
    alternating which goes first.
    """
    import tifffile
    import zarr

    from ats.data import TiffSource

    source = TiffSource(path, low_level=4)
    with tifffile.TiffFile(path) as tif:
        direct = zarr.open(tif.series[0].aszarr(level=0), mode="r")
        side = direct.shape[0]
        rng = np.random.default_rng(1)
        ours, theirs = [], []
        for round_ in range(repeats + 1):
            corners = rng.integers(0, side - READ_PATCH, (READ_COUNT, 2))
            read_ours, read_direct = _patch_readers(source, direct, corners)
            pair = [(ours, read_ours), (theirs, read_direct)]
            warming_up = round_ == 0
            for times, read in pair if round_ % 2 else pair[::-1]:
                times += timing.time_calls(
                    read, repeats=0 if warming_up else 1, warmup=int(warming_up)
                )
        check = source.read(corners[:3], (READ_PATCH, READ_PATCH))[..., 0]
        np.testing.assert_array_equal(check, np.stack(read_direct()[:3]))
    return {
        "ours": timing.summarize(ours, 1000),
        "direct": timing.summarize(theirs, 1000),
        "ratio": statistics.median(ours) / statistics.median(theirs),
    }


def _patch_readers(source, direct, corners):
    """Two readers of the patches at ``corners``: ``source.read`` (a
    ``TiffSource``) and a slice of ``direct`` (a zarr view) per patch."""

    def read_ours():
        return source.read(corners, (READ_PATCH, READ_PATCH))

    def read_direct():
        return [
            np.asarray(direct[r : r + READ_PATCH, c : c + READ_PATCH])
            for r, c in corners
        ]

    return read_ours, read_direct


# ---------------------------------------------------------------------------
# The driver


def _flat_table(options, backend, sides, work_dir, budget_gib):
    """The rows of one backend: every side, every method that fits."""
    quick = options.quick
    rows = []
    for side in sides:
        directory = work_dir / f"side{side}"
        written = options.runner(
            "gigapixel",
            "write_dataset",
            {"directory": str(directory), "side": side},
            backend,
        )
        size_mb = sum(f.stat().st_size for f in directory.rglob("*.tif")) / 1e6
        for method in METHODS:
            row = {
                "backend": backend,
                "side": side,
                "method": method,
                "files_mb": size_mb,
                "write_seconds": written["seconds"],
            }
            limit = QUICK_LIMITS.get(method) if quick else None
            estimate = estimated_gib(method, side)
            if limit is not None and side > limit:
                row["skipped"] = f"--quick stops {method} at {limit}"
            elif estimate > budget_gib:
                row["skipped"] = (
                    f"needs ~{estimate:.0f} GiB > budget {budget_gib:.0f} GiB"
                )
            else:
                try:
                    row.update(
                        options.runner(
                            "gigapixel",
                            "train_steps",
                            {
                                "method": method,
                                "directory": str(directory),
                                "warmup": 1 if quick else 2,
                                "repeats": 3 if quick else 5,
                            },
                            backend,
                            timeout=900,
                        )
                    )
                except Exception as error:
                    row["skipped"] = f"failed: {str(error)[-300:]}"
            options.log(json.dumps(row))
            rows.append(row)
    return rows


def _flatness(rows, interleaved):
    lazy = [r for r in rows if r["method"] == "lazy" and "skipped" not in r]
    if len(lazy) < 2:
        return None
    times = [interleaved[str(r["side"])]["median"] for r in lazy]
    memory = [r["peak_rss_mib"] for r in lazy]
    return {
        "sides": [r["side"] for r in lazy],
        "interleaved_seconds_per_sample": times,
        "time_ratio": max(times) / min(times),
        "memory_ratio": max(memory) / min(memory),
    }


def _plot(payload, path):
    """Time and memory against the side; the lazy path's times are the
    interleaved ones of its first backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backend = payload["rows"][0]["backend"]
    rows = [r for r in payload["rows"] if r["backend"] == backend]
    flat = payload["flatness"].get(backend)
    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for method, marker in zip(METHODS, "osx"):
        done = [r for r in rows if r["method"] == method and "skipped" not in r]
        if not done:
            continue
        sides = [r["side"] for r in done]
        times = [r["seconds_per_sample"] for r in done]
        if method == "lazy" and flat is not None:
            times = flat["interleaved_seconds_per_sample"]
        time_axis.plot(sides, times, marker=marker, label=method)
        memory_axis.plot(
            sides, [r["peak_rss_mib"] / 1024 for r in done], marker=marker, label=method
        )
    for axis, label in (
        (time_axis, "seconds per training sample"),
        (memory_axis, "peak process memory (GiB)"),
    ):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("image side (pixels)")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.suptitle(
        f"{backend}: {N_PATCHES} patches of {PATCH}x{PATCH}, "
        f"batch {BATCH}; missing points did not fit the memory "
        "budget"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _markdown(payload):
    lines = [
        "# Gigapixel attention sampling",
        "",
        reporting.describe_machine_markdown(payload["machine"]),
        "",
    ]
    headers = [
        "backend",
        "side",
        "method",
        "s / sample (min)",
        "peak memory MiB",
        "TIFFs MB",
        "note",
    ]
    table = []
    for r in payload["rows"]:
        done = "skipped" not in r
        table.append(
            [
                r["backend"],
                f"{r['side']:,}",
                r["method"],
                f"{r['seconds_per_sample']:.3f} ({r['min_seconds_per_sample']:.3f})"
                if done
                else "-",
                f"{r['peak_rss_mib']:.0f}" if done else "-",
                f"{r['files_mb']:.1f}",
                r.get("skipped", ""),
            ]
        )
    lines += [
        f"## Cost per training sample ({N_PATCHES} patches of "
        f"{PATCH}x{PATCH}, batch {BATCH}, Adam step, reading included)",
        "",
        reporting.markdown_table(headers, table),
        "",
    ]
    for backend, flat in payload["flatness"].items():
        if flat is None:
            continue
        verdict = (
            "PASS"
            if max(flat["time_ratio"], flat["memory_ratio"]) <= FLAT_BAR
            else "FAIL"
        )
        per_side = ", ".join(
            f"{side:,}: {seconds:.3f}"
            for side, seconds in zip(
                flat["sides"], flat["interleaved_seconds_per_sample"]
            )
        )
        lines.append(
            f"- {backend}, lazy path, sides {flat['sides'][0]:,} to "
            f"{flat['sides'][-1]:,}: time max/min {flat['time_ratio']:.2f} "
            f"(median s / sample, all sides timed in alternation in one "
            f"process: {per_side}), peak memory max/min "
            f"{flat['memory_ratio']:.2f} (bar {FLAT_BAR}): **{verdict}**"
        )
    read = payload["read"]
    verdict = "PASS" if read["ratio"] <= READ_BAR else "FAIL"
    lines += [
        "",
        f"## Reading {READ_COUNT} random {READ_PATCH}x{READ_PATCH} "
        f"patches of a {READ_SIDE:,}^2 JPEG-tiled TIFF",
        "",
        reporting.markdown_table(
            ["reader", "ms (min-max)"],
            [
                ["TiffSource.read", reporting.format_stats(read["ours"])],
                ["tifffile + zarr slices", reporting.format_stats(read["direct"])],
            ],
        ),
        "",
        f"Ratio {read['ratio']:.2f} (bar {READ_BAR}): **{verdict}**",
        "",
        "![cost against image side](gigapixel.png)",
    ]
    return "\n".join(lines)


def run(options=None, work_dir=None, budget_gib=8.0):
    """Run both bars and write ``gigapixel.{json,md,png}``.

    Args:
        options: ``command_line.RunOptions`` (default: JAX only, the
            reference configuration); ``options.output`` receives the
            results. The read bar runs on the first backend.
        work_dir: where the TIFFs are written and reused (default:
            ``$ATS_GIGAPIXEL_WORK_DIR`` or ``/tmp/ats-gigapixel-benchmark``).
        budget_gib: float, the largest estimated memory of a configuration
            to run.
    """
    options = options or command_line.RunOptions(backends=("jax",))
    quick, backends = options.quick, options.backends
    work_dir = Path(
        work_dir
        or os.environ.get("ATS_GIGAPIXEL_WORK_DIR", "/tmp/ats-gigapixel-benchmark")
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(work_dir).free / 1e9
    options.log(f"work dir {work_dir}: {free_gb:.0f} GB free")
    if free_gb < 3:
        raise SystemExit(
            f"{work_dir}: only {free_gb:.1f} GB free, the TIFFs need about 1 GB"
        )
    payload = {
        "machine": reporting.machine_description(),
        "quick": quick,
        "batch": BATCH,
        "n_patches": N_PATCHES,
        "patch": PATCH,
        "rows": [],
        "flatness": {},
    }
    sides = QUICK_SIDES if quick else SIDES
    for backend in backends:
        rows = _flat_table(options, backend, sides, work_dir, budget_gib)
        interleaved = options.runner(
            "gigapixel",
            "lazy_interleaved",
            {
                "directories": [str(work_dir / f"side{side}") for side in sides],
                "warmup": 2,
                "repeats": 5 if quick else 10,
            },
            backend,
            timeout=3600,
        )
        payload["rows"] += rows
        payload["flatness"][backend] = _flatness(rows, interleaved)
    noise = work_dir / f"noise{READ_SIDE}.tif"
    options.runner("gigapixel", "write_noise_tiff", {"path": str(noise)}, backends[0])
    payload["read"] = options.runner(
        "gigapixel",
        "read_patches_ratio",
        {"path": str(noise), "repeats": 5 if quick else 15},
        backends[0],
    )
    output = Path(options.output)
    markdown = _markdown(payload)
    reporting.write_results("gigapixel", payload, markdown, output)
    _plot(payload, output / "gigapixel.png")
    options.log(markdown)


if __name__ == "__main__":
    parser = command_line.argument_parser(__doc__)
    parser.set_defaults(backends="jax")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="where the TIFFs are written and reused "
        "(default: $ATS_GIGAPIXEL_WORK_DIR or "
        "/tmp/ats-gigapixel-benchmark)",
    )
    parser.add_argument(
        "--memory-budget",
        type=float,
        default=8.0,
        help="GiB a configuration may need (default: 8)",
    )
    args = parser.parse_args()
    run(
        command_line.run_options(args),
        work_dir=args.work_dir,
        budget_gib=args.memory_budget,
    )
