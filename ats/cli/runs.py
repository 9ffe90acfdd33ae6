"""The commands every experiment's group has: train, evaluate, visualize.

An experiment module (``ats.experiments.<name>``) gives them their work:
``TrainConfig`` (the hyper-parameters, one flag each), ``train``,
``evaluate_run`` and ``draw_pictures``; optionally ``PRESETS`` and
``DEFAULT_PRESET`` (then ``train`` takes ``--preset`` and the flags override
the preset's values).
Each ``add_*`` function takes the group's ``add_subparsers()`` object and a
function returning the experiment module, called once the Keras backend is
chosen.
"""

from . import (
    add_distribution_arguments,
    add_hyperparameter_arguments,
    distribution_setup,
    hyperparameter_overrides,
)

__all__ = ["add_train_command", "add_evaluate_command", "add_visualize_command"]


def _quiet(parser):
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_train_command(commands, experiment, description, name="train"):
    """Add ``train``: a new run into ``--run-dir`` (or ``--resume`` it).

    Args:
        commands: the group's ``add_subparsers()`` object.
        experiment: callable returning the experiment module.
        description: str, the text of ``train --help``.
        name: str, the command's name.
    """
    module = experiment()
    presets = getattr(module, "PRESETS", None)
    parser = commands.add_parser(
        name, help="train a model into a run directory", description=description
    )
    parser.add_argument(
        "--run-dir",
        required=True,
        help="the run's directory (must not hold a run, unless --resume)",
    )
    parser.add_argument(
        "--data",
        help=getattr(module, "DATA_HELP", "the data set directory")
        + " (required unless --resume)",
    )
    if presets:
        default = module.DEFAULT_PRESET
        parser.add_argument(
            "--preset",
            choices=tuple(presets),
            default=default,
            help=f"the hyper-parameters (default: {default})",
        )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --run-dir from its last "
        "checkpoint (with its saved configuration; --epochs may change the "
        "total)",
    )
    add_hyperparameter_arguments(
        parser,
        module.TrainConfig,
        show_defaults=not presets,
        title="hyper-parameters (default: the preset's)" if presets else None,
    )
    _quiet(parser)
    add_distribution_arguments(parser)

    def run(args):
        if not args.resume and not args.data:
            raise ValueError("train: --data is required (unless --resume)")
        setup = distribution_setup(args)
        overrides = {
            k: v
            for k, v in hyperparameter_overrides(args, module.TrainConfig).items()
            if v is not None
        }
        if presets:
            overrides["preset"] = args.preset
        module.train(
            args.data,
            args.run_dir,
            resume=args.resume,
            verbose=0 if args.quiet else 1,
            setup=setup,
            **overrides,
        )

    parser.set_defaults(handler=run)


def add_evaluate_command(commands, experiment, description=None):
    """Add ``evaluate``: the test error of a run's checkpoint."""
    parser = commands.add_parser(
        "evaluate",
        help="test error of a run's checkpoint",
        description=description
        or "Evaluate a run's last checkpoint on the test set, with "
        "sampled patches and with the most attended patches "
        "(top n_patches), and update its results and report.",
    )
    parser.add_argument("--run-dir", required=True, help="the run directory")
    parser.add_argument("--data", help="the data set, if it has moved")
    _quiet(parser)

    def run(args):
        from ..training.training_run import print_results

        # Printed before results.json is updated (which may fail).
        experiment().evaluate_run(
            args.run_dir,
            args.data,
            verbose=0 if args.quiet else 1,
            on_result=print_results,
        )

    parser.set_defaults(handler=run)


def add_visualize_command(commands, experiment, description):
    """Add ``visualize``: draw a run's pictures again from its checkpoint."""
    parser = commands.add_parser(
        "visualize", help="draw a run's pictures", description=description
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

    def run(args):
        for path in experiment().draw_pictures(args.run_dir, args.data, args.images):
            print(path)

    parser.set_defaults(handler=run)
