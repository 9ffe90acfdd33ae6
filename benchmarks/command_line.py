"""Command line: the options every benchmark script shares.

``--quick`` (the smoke configuration), ``--backends`` (comma-separated,
default all three) and ``--output``; parsed into ``RunOptions``, which every
benchmark's ``run`` takes first.
"""

import argparse
import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

from compiled import BACKENDS
from isolation import run_in_process, run_in_subprocess
from reporting import BENCHMARKS, QUICK_RESULTS, RESULTS


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a benchmark's ``run`` runs.

    Attributes:
        backends: tuple of Keras backend names, each measured in turn.
        quick: bool, the smoke configuration (small sizes, few repetitions).
        output: the results directory.
        log: callable receiving progress lines.
        runner: how to run a measurement: ``isolation.run_in_subprocess``
            (a fresh process each), or ``isolation.run_in_process`` in tests.
    """

    backends: tuple = BACKENDS
    quick: bool = False
    output: Path = RESULTS
    log: Callable = functools.partial(print, flush=True)
    runner: Callable = run_in_subprocess

    @classmethod
    def smoke(cls, output, backend):
        """The quick configuration on ``backend``, in this process, silent,
        writing to ``output``: how the smoke tests run a benchmark."""
        return cls(
            backends=(backend,),
            quick=True,
            output=output,
            log=lambda line: None,
            runner=run_in_process,
        )


def argument_parser(doc):
    """The parser of the shared options, described by ``doc``."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke configuration: small sizes, few repetitions (for CI)",
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated Keras backends (default: %(default)s)",
    )
    results, quick_results = (
        path.relative_to(BENCHMARKS.parent) for path in (RESULTS, QUICK_RESULTS)
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"results directory (default: {results}, or {quick_results} with --quick)",
    )
    return parser


def run_options(args):
    """``RunOptions`` from ``argument_parser``'s parsed options."""
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if not backends or set(backends) - set(BACKENDS):
        raise SystemExit(
            f"--backends must name some of {BACKENDS}, got {args.backends!r}"
        )
    output = args.output or (QUICK_RESULTS if args.quick else RESULTS)
    return RunOptions(backends=backends, quick=args.quick, output=output)


def main(run, doc):
    """Run one benchmark script: parse the shared options, call ``run``."""
    run(run_options(argument_parser(doc).parse_args()))
