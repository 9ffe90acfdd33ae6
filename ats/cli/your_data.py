"""``ats fit``, ``ats evaluate``, ``ats predict``: your own images.

Thin shells over :mod:`ats.experiments.your_data` (see
``docs/your_data.md``):

* ``fit``: train on a CSV manifest (``--data``) into a run directory, with
  everything ``ats mnist train`` has (``config.json``, ``metrics.csv``, a
  checkpoint per epoch, ``--resume``, pictures, ``report.md``), then write
  ``evaluation.json`` and ``evaluation.md``.
* ``evaluate``: the classification metrics of a run's checkpoint, sampled
  and with the most attended patches, and the ROC AUC with bootstrap
  intervals per image and per case (the manifest's ``group``).
* ``predict``: ``predictions.csv``, a heatmap and a gallery of patches per
  image, and QuPath objects (GeoJSON) and an attention TIFF in the image's
  level-0 pixels; metrics when the manifest has labels.
"""

from .runs import add_evaluate_command, add_train_command


def register(groups):
    """Add ``fit``, ``evaluate`` and ``predict`` to the ``ats`` parser.

    Args:
        groups: the ``add_subparsers()`` object of the ``ats`` parser.
    """
    add_train_command(
        groups,
        _experiment,
        "Train attention sampling on your images: a CSV manifest with a "
        "`path` and a `label` column (optional `split`, `group`, `mask`) of "
        "PNG, JPEG, TIFF, slide, .npy or zarr files of any size. Every row is "
        "checked before training; each image keeps its aspect ratio and its "
        "own scale; only the sampled patches are read at full resolution.",
        name="fit",
    )
    add_evaluate_command(
        groups,
        _experiment,
        "Evaluate a run's checkpoint on its test split: accuracy, balanced "
        "accuracy, per-class precision and recall, confusion matrix and ROC "
        "AUC, with sampled patches (mean of 5 passes) and with the most "
        "attended ones, and the ROC AUC with 95% bootstrap intervals per image "
        "and per case (the manifest's `group`; a case's prediction is the mean "
        "of its images' probabilities); writes evaluation.json and "
        "evaluation.md.",
    )
    _predict(groups)


def _experiment():
    # Imported once the Keras backend is chosen (see `ats.cli.main`).
    from ..experiments import your_data

    return your_data


def _predict(groups):
    parser = groups.add_parser(
        "predict",
        help="predict images with a trained run",
        description="Predict the class of every image of a manifest, a "
        "folder or a file with a run's checkpoint. Writes "
        "predictions.csv (per file: the predicted class and every class's "
        "probability, sampled and most attended) and, per file, a heatmap "
        "PNG and a PNG of the most attended patches, and in overlays/ a "
        "GeoJSON of QuPath objects (the most attended patches and the "
        "attention map's cells, in level-0 pixels: File > Object data > "
        "Import objects) and an attention TIFF tagged with its downsample. "
        "With a manifest's `label` column: evaluation.json and evaluation.md "
        "(ROC AUC intervals per image and per `group`). Files that cannot be "
        "read are listed (unreadable.csv), not fatal.",
    )
    parser.add_argument("--run-dir", required=True, help="the run directory")
    parser.add_argument(
        "--data", required=True, help="a CSV manifest, a folder of images or a file"
    )
    parser.add_argument("--out", required=True, help="the folder to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")

    def run(args):
        _experiment().predict(
            args.run_dir, args.data, args.out, verbose=0 if args.quiet else 1
        )

    parser.set_defaults(handler=run)
