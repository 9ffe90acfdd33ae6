"""``ats datasets ...``: data sets ready for ``ats fit``.

Commands (thin shells over :mod:`ats.datasets.speed_limits`,
:mod:`ats.datasets.colon_cancer` and :mod:`ats.datasets.synthetic_sizes`),
each writing ``DIR/manifest.csv`` and printing the command that trains on
it:

* ``speed-limits DIR``: the paper's Speed Limits (Swedish Traffic Signs),
  downloaded unless ``--no-download``;
* ``colon-cancer DIR``: the paper's colon cancer images (CRCHistoPhenotypes),
  downloaded unless ``--no-download``;
* ``synthetic DIR``: a small offline data set of mixed sizes and formats;
* ``demo-slides DIR``: synthetic H&E-like whole-slide images (SVS files with
  microns per pixel) for the pathology demo, offline.
"""

import csv
from collections import Counter

from . import add_group


def register(groups):
    """Add the ``datasets`` group and its commands to ``groups``.

    Args:
        groups: the ``add_subparsers()`` object of the ``ats`` parser.
    """
    commands = add_group(
        groups,
        "datasets",
        help="write data sets (and their manifest.csv) for ats fit",
        description="Download, unpack and filter the paper's real data sets, "
        "or write a synthetic one, into a folder with a manifest.csv "
        "that `ats fit --data DIR/manifest.csv` trains on.",
    )
    parser = commands.add_parser(
        "speed-limits",
        help="the paper's Speed Limits (Swedish Traffic Signs)",
        description="Download the Swedish Traffic Signs (Set1 and Set2; "
        "annotations checked against the original script's md5) and "
        "write the manifest of the Speed Limits subset filtered as the "
        "original scripts/speed_limits.py did: classes none, 50, 70, 80 "
        "km/h; Set1 trains, Set2 tests (--seed odd: the other way round).",
    )
    _add_common(parser)
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        metavar="X",
        help="fraction of the training photographs (whole recording sequences) "
        "kept for validation; 0: the original training set (default: 0.1)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="odd: train on Set2 (default: 0)"
    )
    parser.set_defaults(handler=_run_speed_limits)

    parser = commands.add_parser(
        "colon-cancer",
        help="the paper's colon cancer images (CRCHistoPhenotypes)",
        description="Download the CRCHistoPhenotypes archive (100 H&E images "
        "of 500x500) and write the manifest: positive where epithelial "
        "nuclei are annotated. If the host refuses the download, put "
        "crchistophenotypes_2016_04_28.zip in DIR and run again.",
    )
    _add_common(parser)
    parser.add_argument("--sha256", help="the digest the downloaded archive must have")
    parser.set_defaults(handler=_run_colon_cancer)

    parser = commands.add_parser(
        "synthetic",
        help="a small synthetic data set of mixed sizes and formats (offline)",
        description="Write images of 400 to 4,000 pixels a side in several "
        "aspect ratios, as PNG, JPEG and pyramidal TIFF, labelled by small "
        "marks (upright or diagonal crosses) that only the full resolution "
        "tells apart.",
    )
    parser.add_argument("directory", metavar="DIR", help="the folder to write")
    parser.add_argument(
        "--n-images", type=int, default=120, help="number of images (default: 120)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the data set (default: 0)"
    )
    parser.add_argument(
        "--min-side", type=int, default=400, help="smallest side (default: 400)"
    )
    parser.add_argument(
        "--max-side", type=int, default=4000, help="largest side (default: 4000)"
    )
    parser.set_defaults(handler=_run_synthetic)

    parser = commands.add_parser(
        "demo-slides",
        help="synthetic H&E-like whole-slide images (SVS, offline)",
        description="Write SVS slides (JPEG tiles, a pyramid, 0.5 microns "
        "per pixel) of pink/purple tissue on white glass, some with pen "
        "marks; slides labelled tumour hold small nests of large dark "
        "nuclei, which only the full resolution tells from the lymphoid "
        "aggregates every slide has. Cases of 1 or 2 slides (the manifest's "
        "group); structures.json gives every structure's box.",
    )
    parser.add_argument("directory", metavar="DIR", help="the folder to write")
    parser.add_argument(
        "--n-slides", type=int, default=12, help="number of slides (default: 12)"
    )
    parser.add_argument(
        "--side-range",
        type=int,
        nargs=2,
        default=(20000, 24000),
        metavar=("LOW", "HIGH"),
        help="range of the slides' sides in pixels (default: 20000 24000)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the data set (default: 0)"
    )
    parser.set_defaults(handler=_run_demo_slides)


def _add_common(parser):
    parser.add_argument(
        "directory", metavar="DIR", help="the data set's folder (downloads go here)"
    )
    parser.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="do not download: use the files already in DIR",
    )


def _summary(manifest, preset, options=""):
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    counts = Counter(r["label"] for r in rows)
    labels = ", ".join(f"{label} {counts[label]}" for label in sorted(counts))
    if rows and "split" in rows[0]:
        splits = Counter(r["split"] for r in rows)
        labels += " (" + ", ".join(f"{s} {splits[s]}" for s in sorted(splits)) + ")"
    print(f"wrote {manifest}: {len(rows)} files; {labels}")
    run = manifest.parent.name or "run"
    option = (f" --preset {preset}" if preset else "") + options
    print(
        f"next: ats fit --data {manifest}{option} --run-dir runs/{run}",
    )


def _run_speed_limits(args):
    from ..datasets import downloads, speed_limits

    if args.download:
        speed_limits.download(args.directory, progress=downloads.default_progress())
    manifest = speed_limits.write_manifest(
        args.directory, seed=args.seed, val_fraction=args.val_fraction
    )
    _summary(manifest, "speed-limits")


def _run_colon_cancer(args):
    from ..datasets import colon_cancer, downloads

    if args.download:
        colon_cancer.download(
            args.directory, sha256=args.sha256, progress=downloads.default_progress()
        )
    manifest = colon_cancer.write_manifest(args.directory)
    _summary(manifest, "colon-cancer")


def _run_synthetic(args):
    from ..datasets import synthetic_sizes

    manifest = synthetic_sizes.write_synthetic(
        args.directory,
        n_images=args.n_images,
        seed=args.seed,
        min_side=args.min_side,
        max_side=args.max_side,
    )
    _summary(manifest, None)


def _run_demo_slides(args):
    from ..datasets import synthetic_slides

    manifest = synthetic_slides.write_demo_slides(
        args.directory,
        n_slides=args.n_slides,
        side_range=tuple(args.side_range),
        seed=args.seed,
    )
    _summary(manifest, None, " --patch-mpp 0.5 --low-mpp 32 --mask tissue")
