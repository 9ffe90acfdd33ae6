"""Slide reads: random 256x256 patches per second from a JPEG-tiled pyramid.

Writes (once, then reuses) an RGB pyramidal TIFF of ``--side`` pixels a side
(20,000 by default) in 256x256 JPEG tiles (quality 90), generated tile by
tile (never whole in memory), with reduced levels each half the previous,
and times reading random 256x256 windows of level 0 with 1 and 2 threads,
through:

* ``TiffSource.read`` (ours: tifffile's decoders on the tiles a patch
  overlaps, on ``ats.data``'s reading thread pool);
* tifffile + zarr (``series.aszarr(level=0)`` sliced per patch, from a
  thread pool);
* OpenSlide's ``read_region`` (openslide-python + openslide-bin);
* tiffslide's ``read_region``.

Every reader reads the same corners; rounds alternate the readers, so a
change of the machine's load hits them alike. A reader that cannot open the
file (or is not installed) is reported as such.

    python benchmarks/slide_reads.py            # 20,000 x 20,000
    python benchmarks/slide_reads.py --quick    # 2,048 x 2,048, a smoke run

Results: ``benchmarks/results/slide_reads.{json,md}`` (``--quick``: under
``benchmarks/results/quick/``).
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import command_line
import numpy as np
import reporting
import timing

NAME = "slide_reads"
TITLE = "Random 256x256 reads from a JPEG-tiled slide"
SIDE, QUICK_SIDE = 20000, 2048
TILE = PATCH = 256
THREADS = (1, 2)
READS, QUICK_READS = 400, 40  # patches per timed round
ROUNDS, QUICK_ROUNDS = 5, 2
READERS = ("TiffSource", "tifffile + zarr", "OpenSlide read_region", "tiffslide")


def write_slide(path, side, tile=TILE):
    """An RGB ``side`` x ``side`` pyramidal TIFF of 256x256 JPEG tiles.

    The tiles are made one at a time from a few stained-looking textures
    (smooth colour blobs with grain), so every tile is different and costs a
    real JPEG decode; reduced levels (each half the previous, down to about
    1,000 pixels, at least one) are plain, for the readers' pyramid. Reused
    if present.

    Returns:
        dict: ``{"reused": bool, "seconds": float, "bytes": int}``.
    """
    import tifffile

    path = Path(path)
    if path.is_file():
        return {"reused": True, "seconds": 0.0, "bytes": path.stat().st_size}
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    blobs = rng.integers(120, 235, (8, tile // 16, tile // 16, 3)).astype(np.uint8)
    textures = [np.kron(b, np.ones((16, 16, 1), np.uint8)) for b in blobs]

    def tiles():
        for index in range((-(-side // tile)) ** 2):
            texture = np.roll(textures[index % len(textures)], index % tile, axis=1)
            grain = rng.integers(-12, 12, texture.shape, dtype=np.int16)
            yield np.clip(texture + grain, 0, 255).astype(np.uint8)

    options = dict(
        tile=(tile, tile),
        compression="jpeg",
        compressionargs={"level": 90},
        photometric="rgb",
        metadata=None,
    )
    partial = path.with_suffix(".partial")
    with tifffile.TiffWriter(partial, bigtiff=True) as writer:
        writer.write(tiles(), shape=(side, side, 3), dtype=np.uint8, **options)
        level_side = side // 2
        while level_side >= tile and (level_side >= 1000 or level_side == side // 2):
            writer.write(
                np.full((level_side, level_side, 3), 200, np.uint8),
                subfiletype=1,
                **options,
            )
            level_side //= 2
    os.replace(partial, path)
    return {
        "reused": False,
        "seconds": time.perf_counter() - start,
        "bytes": path.stat().st_size,
    }


def _opened_readers(path):
    """``{name: opened reader}``, or ``{name: error message}`` for a
    reader that cannot open the file (or is not installed)."""
    readers = {}
    try:
        from ats.data import TiffSource

        source = TiffSource(path, low_level=1)
        readers["TiffSource"] = source
    except Exception as error:  # reported, not raised: a row says why
        readers["TiffSource"] = f"{type(error).__name__}: {error}"
    try:
        import tifffile
        import zarr

        tif = tifffile.TiffFile(path)
        readers["tifffile + zarr"] = (
            zarr.open(tif.series[0].aszarr(level=0), mode="r"),
            tif,
        )
    except Exception as error:
        readers["tifffile + zarr"] = f"{type(error).__name__}: {error}"
    for name, module in (
        ("OpenSlide read_region", "openslide"),
        ("tiffslide", "tiffslide"),
    ):
        try:
            library = __import__(module)
            opener = library.OpenSlide if module == "openslide" else library.TiffSlide
            readers[name] = opener(path)
        except Exception as error:
            readers[name] = f"{type(error).__name__}: {error}"
    return readers


def _batch_reader(name, reader, threads, pool):
    """``read(corners)`` reading every corner's patch with ``threads``
    threads (``pool``: a pool of that many, or None for one)."""
    if name == "TiffSource":
        return lambda corners: reader.read(corners, (PATCH, PATCH), threads=threads)
    if name == "tifffile + zarr":
        array = reader[0]

        def one(corner):
            r, c = (int(v) for v in corner)
            return np.asarray(array[r : r + PATCH, c : c + PATCH])

    else:
        slide = reader
        rgba = name == "OpenSlide read_region"

        def one(corner):
            r, c = (int(v) for v in corner)
            if rgba:
                return np.asarray(slide.read_region((c, r), 0, (PATCH, PATCH)))[..., :3]
            return slide.read_region((c, r), 0, (PATCH, PATCH), as_array=True)

    if pool is None:
        return lambda corners: [one(corner) for corner in corners]
    return lambda corners: list(pool.map(one, corners))


def measure(path, reads, rounds):
    """Reads per second of every reader at 1 and 2 threads.

    Args:
        path: the slide written by ``write_slide``.
        reads: int, patches per timed round.
        rounds: int, timed rounds (after one warm-up round).

    Returns:
        list of row dicts: ``reader``, ``threads`` and ``reads_per_s`` (a
        ``timing.summarize`` of the rounds' rates), or ``error``.
    """
    from ats.data import set_read_threads

    readers = _opened_readers(path)
    side = readers["tifffile + zarr"][0].shape[0]
    rng = np.random.default_rng(1)
    rows = []
    pools = {threads: ThreadPoolExecutor(threads) for threads in THREADS if threads > 1}
    try:
        batch = {
            (name, threads): _batch_reader(name, reader, threads, pools.get(threads))
            for name, reader in readers.items()
            if not isinstance(reader, str)
            for threads in THREADS
        }
        rates = {key: [] for key in batch}
        check = rng.integers(0, side - PATCH, (3, 2))
        reference = np.stack(batch["tifffile + zarr", 1](check)).astype(int)
        # Every reader reads the same pixels (decoders may round differently).
        differences = {
            name: float(np.abs(np.stack(batch[name, 1](check)) - reference).mean())
            for name, _ in batch
        }
        for round_ in range(rounds + 1):
            corners = rng.integers(0, side - PATCH, (reads, 2))
            keys = list(batch) if round_ % 2 else list(batch)[::-1]
            for key in keys:
                start = time.perf_counter()
                batch[key](corners)
                if round_:  # the first round warms up
                    rates[key].append(reads / (time.perf_counter() - start))
    finally:
        for pool in pools.values():
            pool.shutdown()
        set_read_threads(None)
    for name, reader in readers.items():
        for threads in THREADS:
            row = {"reader": name, "threads": threads}
            if isinstance(reader, str):
                row["error"] = f"cannot open the file: {reader}"
            else:
                row["reads_per_s"] = timing.summarize(rates[name, threads])
                row["mean_abs_difference"] = differences[name]
            rows.append(row)
    for reader in readers.values():
        if not isinstance(reader, str):
            (reader[1] if isinstance(reader, tuple) else reader).close()
    return rows


def run(options=None, work_dir=None, side=None):
    """Write the slide, measure, write ``slide_reads.{json,md}``.

    Args:
        options: ``command_line.RunOptions`` (its ``quick`` and ``output``;
            the backends do not matter: no model runs).
        work_dir: where the slide is written and reused (default:
            ``$ATS_SLIDE_READS_WORK_DIR`` or ``/tmp/ats-slide-reads``).
        side: int or None (20,000; ``--quick``: 2,048).

    Returns:
        The JSON payload written.
    """
    options = options or command_line.RunOptions(backends=("jax",))
    quick = options.quick
    side = side or (QUICK_SIDE if quick else SIDE)
    reads, rounds = (QUICK_READS, QUICK_ROUNDS) if quick else (READS, ROUNDS)
    work_dir = Path(
        work_dir or os.environ.get("ATS_SLIDE_READS_WORK_DIR", "/tmp/ats-slide-reads")
    )
    machine = reporting.machine_description()
    path = work_dir / f"slide{side}.tif"
    options.log(f"writing (or reusing) {path}")
    written = write_slide(path, side)
    rows = measure(str(path), reads, rounds)
    settings = {
        "side": side,
        "tile": TILE,
        "patch": PATCH,
        "reads_per_round": reads,
        "rounds": rounds,
        "threads": list(THREADS),
        "slide": {"path": str(path), **written},
    }
    payload = reporting.payload(NAME, quick, machine, settings, rows)
    reporting.write_results(NAME, payload, report(payload), options.output)
    for row in rows:
        figure = row.get("reads_per_s")
        options.log(
            f"  {row['reader']}, {row['threads']} thread(s): "
            + (f"{figure['median']:.0f} reads/s" if figure else row["error"])
        )
    return payload


def report(payload):
    """The Markdown report of a ``run`` payload."""
    settings = payload["settings"]
    side = settings["side"]
    method = (
        f"A {side:,} x {side:,} RGB pyramidal TIFF in {settings['tile']}x"
        f"{settings['tile']} JPEG tiles (quality 90, "
        f"{settings['slide']['bytes'] / 2**20:.0f} MiB). Each round reads "
        f"{settings['reads_per_round']} random {settings['patch']}x"
        f"{settings['patch']} windows of level 0 (most overlap 4 tiles) with "
        "every reader, in alternating order; reads per second, median (min-max) "
        f"of {settings['rounds']} rounds after one warm-up round."
    )
    by_reader = {}
    for row in payload["rows"]:
        by_reader.setdefault(row["reader"], {})[row["threads"]] = row
    headers = ["reader", *(f"{t} thread(s), reads/s" for t in settings["threads"])]
    lines = []
    for reader, by_threads in by_reader.items():
        cells = []
        for threads in settings["threads"]:
            row = by_threads[threads]
            figure = row.get("reads_per_s")
            cells.append(reporting.format_stats(figure, 0) if figure else row["error"])
        lines.append([reader, *cells])
    medians = {
        (row["reader"], row["threads"]): row["reads_per_s"]["median"]
        for row in payload["rows"]
        if "reads_per_s" in row
    }
    ratios = [
        f"TiffSource / {other} at {t} thread(s): "
        f"{medians['TiffSource', t] / medians[other, t]:.2f}"
        for other in READERS[1:]
        for t in settings["threads"]
        if ("TiffSource", t) in medians and (other, t) in medians
    ]
    context = (
        "Context: public figures for OpenSlide are a few hundred to a few "
        "thousand 256x256 tiles per second per thread, depending on the CPU, "
        "the codec and the cache."
    )
    return reporting.markdown_report(
        TITLE,
        payload,
        [method, reporting.markdown_table(headers, lines), "; ".join(ratios), context],
    )


if __name__ == "__main__":
    parser = command_line.argument_parser(__doc__)
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="where the slide is written and reused (default: "
        "$ATS_SLIDE_READS_WORK_DIR or /tmp/ats-slide-reads)",
    )
    parser.add_argument(
        "--side", type=int, default=None, help="slide side (default 20000)"
    )
    args = parser.parse_args()
    run(command_line.run_options(args), work_dir=args.work_dir, side=args.side)
