"""The ``ats`` command line.

Usage: ``ats [--backend NAME] GROUP COMMAND [options]``, e.g.
``ats mnist train --help``. Every group and command has ``--help``.

Each group is a module of this package with a ``register(groups)`` function
that adds its parser, usually with :func:`add_group` (see
:mod:`ats.cli.mnist`); list it in ``GROUPS`` to add it. The Keras backend is
chosen before any group is registered (registering imports the library):
``--backend``, else the ``KERAS_BACKEND`` environment variable, else JAX.

Flags are spelled the same way in every command:

* a hyper-parameter is ``--`` and its field's name with ``-`` for ``_``
  (``learning_rate`` is ``--learning-rate``), made by
  :func:`add_hyperparameter_arguments` from the experiment's declaration
  (:class:`ats.training.TrainConfig`), never written by hand;
* ``--data DIR`` is a data set a command reads; ``--out PATH`` is a new file
  or data set a command writes (``make-data``, ``report``); ``--run-dir
  DIR`` is a training run's directory, written by ``train`` (``--resume``
  continues it) and read by ``evaluate`` and ``visualize``;
* ``--preset NAME`` picks a set of hyper-parameters that the flags
  override; ``--quiet`` turns progress bars off.

An error the user can act on (a file that cannot be read or written, an
argument that does not fit, a run in use by another process, a loss that
became NaN) is one line ``ats: error: ...`` naming the file or argument,
with exit status 1; Ctrl-C says what the run keeps and how to resume it,
with exit status 130.
"""

import argparse
import dataclasses
import importlib
import os
import sys

__all__ = [
    "GROUPS",
    "build_parser",
    "main",
    "add_group",
    "patch_size",
    "add_hyperparameter_arguments",
    "hyperparameter_overrides",
    "add_distribution_arguments",
    "distribution_setup",
]

GROUPS = ("your_data", "mnist", "gigapixel", "datasets")
"""The modules of ``ats.cli`` that register a group of commands."""

BACKENDS = ("jax", "torch", "tensorflow")

# The strategies of `ats.distribute.configure` on every backend, in the order
# of --help (tests/cli/test_cli.py checks they are the library's).
STRATEGIES = (
    "auto",
    "none",
    "data_parallel",
    "model_parallel",
    "mirrored",
    "multi_worker_mirrored",
    "ddp",
)


def build_parser():
    """The ``ats`` argument parser with every group registered."""
    parser = argparse.ArgumentParser(
        prog="ats",
        description="Attention sampling (Katharopoulos & Fleuret, ICML "
        "2019) on Keras 3: make data sets, train, evaluate and "
        "draw models.",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="the Keras backend (default: $KERAS_BACKEND, else jax)",
    )
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
            f"expected HEIGHTxWIDTH such as 50x50, got {text!r}"
        ) from None
    return (height, width)


def _declared(config_class):
    # The fields of `ats.training.hyperparameters.hyperparameter`.
    return [f for f in dataclasses.fields(config_class) if "kind" in f.metadata]


def _flag_options(field, show_default):
    spec = field.metadata
    options = {"dest": field.name, "default": None, "help": spec["help"]}
    if spec["kind"] == "int":
        options.update(type=int, metavar="N")
    elif spec["kind"] == "real":
        options.update(type=float, metavar="X")
    elif spec["kind"] == "bool":
        options.update(action=argparse.BooleanOptionalAction)
    elif spec["kind"] == "choice":
        options.update(choices=spec["choices"])
    elif spec["kind"] == "pair":
        options.update(type=patch_size, metavar="HxW")
    elif spec["kind"] == "text":
        options.update(metavar="TEXT")
    else:
        options.update(type=int, nargs="+", metavar="I")
    if show_default:
        default = field.default
        if spec["kind"] == "pair":
            default = "x".join(map(str, default))
        elif spec["kind"] == "indices":
            default = " ".join(map(str, default))
        options["help"] += f" (default: {default})"
    return options


def add_hyperparameter_arguments(parser, config_class, show_defaults=True, title=None):
    """Add a flag per declared hyper-parameter of ``config_class``.

    ``--name-with-dashes`` for the field ``name_with_dashes``, typed by its
    declaration (``HEIGHTxWIDTH`` for a pair, ``--flag/--no-flag`` for a
    bool, the choices of a choice), None when left out. Read the given ones
    back with :func:`hyperparameter_overrides`.

    Args:
        parser: the command's ``argparse`` parser.
        config_class: a :class:`ats.training.TrainConfig` subclass.
        show_defaults: append the declared defaults to the help (False when
            a preset gives them).
        title: optional title of the group of flags.
    """
    group = parser.add_argument_group(title or "hyper-parameters")
    for field in _declared(config_class):
        flag = "--" + field.name.replace("_", "-")
        group.add_argument(flag, **_flag_options(field, show_defaults))


def hyperparameter_overrides(args, config_class):
    """The hyper-parameters given on the command line, as a dict of field
    names to values (those left out are None)."""
    return {f.name: getattr(args, f.name) for f in _declared(config_class)}


def add_distribution_arguments(parser):
    """Add the device and process options of a training command.

    Read them back with :func:`distribution_setup`.

    Args:
        parser: the command's ``argparse`` parser.
    """
    group = parser.add_argument_group(
        "devices and processes",
        "Train on several devices or hosts with the backend's own engine "
        "(docs/distributed.md). --batch-size is then the global batch. "
        "PyTorch: start the command with `torchrun --nproc_per_node=N`.",
    )
    group.add_argument(
        "--distribute",
        choices=STRATEGIES,
        default="auto",
        help="JAX: data_parallel, model_parallel; TensorFlow: mirrored, "
        "multi_worker_mirrored (TF_CONFIG); PyTorch: ddp (under "
        "torchrun). auto (default): data parallel when there is more "
        "than one device or process, else none",
    )
    group.add_argument(
        "--devices",
        type=int,
        metavar="N",
        help="use the first N devices (JAX, TensorFlow; default: all)",
    )
    group.add_argument(
        "--model-parallel",
        type=int,
        default=1,
        metavar="N",
        help="JAX model_parallel: devices per model replica (default: 1)",
    )
    group.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="JAX multi-host: the address of process 0",
    )
    group.add_argument(
        "--num-processes", type=int, help="JAX multi-host: the number of processes"
    )
    group.add_argument(
        "--process-id", type=int, help="JAX multi-host: the index of this process"
    )
    group.add_argument(
        "--simulate-cpu-devices",
        type=int,
        metavar="N",
        help="split the CPU into N devices to try a multi-device run (JAX, TensorFlow)",
    )


def distribution_setup(args):
    """The ``ats.distribute.Setup`` that the parsed options ask for.

    Call it before the command runs anything on the backend (simulated
    devices must be set up first).

    Args:
        args: the ``argparse.Namespace`` of a command with
            :func:`add_distribution_arguments`.

    Returns:
        The ``Setup`` of ``ats.distribute.configure``.
    """
    from .. import distribute

    if args.simulate_cpu_devices is not None:
        distribute.simulate_cpu_devices(args.simulate_cpu_devices)
    return distribute.configure(
        args.distribute,
        devices=args.devices,
        model_parallel=args.model_parallel,
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
    )


def main(argv=None):
    """Run the ``ats`` command line; returns the exit status.

    Args:
        argv: list of arguments (default: ``sys.argv[1:]``).
    """
    # The backend first: registering the groups imports Keras.
    chooser = argparse.ArgumentParser(prog="ats", add_help=False)
    chooser.add_argument("--backend", choices=BACKENDS)
    backend = chooser.parse_known_args(argv)[0].backend
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != os.environ["KERAS_BACKEND"]:
        chooser.error(
            f"--backend {os.environ['KERAS_BACKEND']}: Keras was already "
            f"imported with the {keras.backend.backend()} backend"
        )
    args = build_parser().parse_args(argv)
    from ..training import NonFiniteError, RunLockedError

    try:
        return args.handler(args) or 0
    except KeyboardInterrupt as interrupt:
        # `ats.training.TrainingInterrupted` says what was saved.
        print(f"ats: {interrupt or 'interrupted'}", file=sys.stderr)
        return 130
    except (OSError, ValueError, RunLockedError, NonFiniteError) as error:
        print(f"ats: error: {_message(error)}", file=sys.stderr)
        return 1


def _message(error):
    """One line for the user: an ``OSError`` as ``file: problem``; an error
    that lists several problems (``ats.data.ManifestError``) keeps a line
    per problem."""
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
        if error.filename is not None:
            text = f"{error.filename}: {text}"
    else:
        text = str(error)
    if getattr(error, "problems", None):
        return "\n".join(" ".join(line.split()) for line in text.splitlines())
    return " ".join(text.split())
