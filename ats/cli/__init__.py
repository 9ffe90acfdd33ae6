"""The ``ats`` command line.

Usage: ``ats [--backend NAME] GROUP COMMAND [options]``, e.g.
``ats mnist train --help``. Every group and command has ``--help``.

Each group is a module of this package with a ``register(groups)`` function
that adds its parser, usually with :func:`add_group` (see
:mod:`ats.cli.mnist`); list it in ``GROUPS`` to add it. Commands import the library (and so Keras) only when
they run, after the Keras backend has been chosen: ``--backend``, else the
``KERAS_BACKEND`` environment variable, else JAX.
"""

import argparse
import importlib
import os
import sys

__all__ = ["GROUPS", "build_parser", "main", "add_group", "patch_size"]

GROUPS = ("mnist", "gigapixel")
"""The modules of ``ats.cli`` that register a group of commands."""

BACKENDS = ("jax", "torch", "tensorflow")


def build_parser():
    """The ``ats`` argument parser with every group registered."""
    parser = argparse.ArgumentParser(
        prog="ats",
        description="Attention sampling (Katharopoulos & Fleuret, ICML "
                    "2019) on Keras 3: make data sets, train, evaluate and "
                    "draw models.")
    parser.add_argument(
        "--backend", choices=BACKENDS,
        help="the Keras backend (default: $KERAS_BACKEND, else jax)")
    parser.set_defaults(handler=_help(parser))
    groups = parser.add_subparsers(title="groups", metavar="GROUP")
    for name in GROUPS:
        importlib.import_module(f"{__name__}.{name}").register(groups)
    return parser


def _help(parser):
    """A handler that prints ``parser``'s help (for a missing command)."""
    def show(args):
        parser.print_help()
        return 2
    return show


def add_group(groups, name, help, description):
    """Add a group of commands to the ``ats`` parser.

    Args:
        groups: the ``add_subparsers()`` object passed to ``register``.
        name: str, the group's name (``ats NAME ...``).
        help: str, one line for ``ats --help``.
        description: str, the text of ``ats NAME --help``.

    Returns:
        The group's own ``add_subparsers()`` object: add each command with
        ``add_parser(...)`` and ``set_defaults(handler=...)``, a function of
        the parsed arguments returning the exit status (None for 0). Run
        without a command, the group prints its usage.
    """
    parser = groups.add_parser(name, help=help, description=description)
    parser.set_defaults(handler=_help(parser))
    return parser.add_subparsers(title="commands", metavar="COMMAND")


def patch_size(text):
    """``argparse`` type of a patch size ``HEIGHTxWIDTH`` (e.g. ``50x50``)."""
    try:
        height, width = (int(s) for s in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH such as 50x50, got {text!r}") from None
    return (height, width)


def main(argv=None):
    """Run the ``ats`` command line; returns the exit status.

    Args:
        argv: list of arguments (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = sys.modules.get("keras")
    if keras is not None and \
            keras.backend.backend() != os.environ["KERAS_BACKEND"]:
        parser.error(
            f"--backend {os.environ['KERAS_BACKEND']}: Keras was already "
            f"imported with the {keras.backend.backend()} backend")
    try:
        return args.handler(args) or 0
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"ats: error: {error}", file=sys.stderr)
        return 1
