"""Run every benchmark of ``benchmarks/`` and write a summary for the README.

    python benchmarks/run.py            # reference figures, benchmarks/results
    python benchmarks/run.py --quick    # CI smoke run, benchmarks/results/quick

1. ``ats_vs_cnn``: ATS against the full-image CNN, time and memory per
   sample of a training step, per image side (``ats_vs_cnn.{json,md,png}``).
2. ``overhead``: an ATS training step against the same networks fed
   pre-extracted patches (``overhead.{json,md}``).
3. ``extract_patches``: patch extraction against a numpy slice copy
   (``extract_patches.{json,md}``).
4. ``mixed_sizes``: a training step on a batch of images of mixed sizes
   (one bucket) against one on same-size images with the same number of
   pixels (``mixed_sizes.{json,md}``).

Each on every backend asked for (JAX, PyTorch, TensorFlow by default), each
measurement in a fresh process. ``summary.md`` gathers their tables, the
goals and the machine's description; ``summary.json`` the run's settings
and duration. The exit status is 1 if a configuration failed (its process
died), after the results are written.
"""

import shlex
import sys
import time

import ats_vs_cnn
import command_line
import extract_patches
import mixed_sizes
import overhead
import reporting

BENCHMARKS = {
    "ats_vs_cnn": ats_vs_cnn,
    "overhead": overhead,
    "extract_patches": extract_patches,
    "mixed_sizes": mixed_sizes,
}


def summary(payloads, seconds, command):
    """The Markdown summary of a run: the tables the README quotes.

    Args:
        payloads: dict benchmark name -> the payload its ``run`` returned.
        seconds: float, the run's duration.
        command: str, the command that reproduces it.
    """
    quick = any(p["quick"] for p in payloads.values())
    machine = next(iter(payloads.values()))["machine"]
    parts = [
        "# Benchmarks" + (" (quick smoke run: not reference figures)" if quick else ""),
        f"Reproduce with `{command}` ({seconds / 60:.1f} min on the machine "
        "below). Medians (min-max) after warm-up; ratios measured in the same "
        "run. Method: benchmarks/README.md.",
        "Machine: " + reporting.describe_machine_markdown(machine),
    ]
    if "ats_vs_cnn" in payloads:
        payload = payloads["ats_vs_cnn"]
        parts += [
            f"## {ats_vs_cnn.TITLE} (one training step)",
            ats_vs_cnn.goal_line(payload),
            ats_vs_cnn.summary_table(payload),
            "![time and memory per sample](ats_vs_cnn.png)",
        ]
    if "overhead" in payloads:
        parts += [
            f"## {overhead.TITLE} (goal <= {overhead.GOAL_RATIO:.2f})",
            overhead.summary_table(payloads["overhead"]),
        ]
    if "extract_patches" in payloads:
        parts += [
            f"## {extract_patches.TITLE}",
            extract_patches.summary_table(payloads["extract_patches"]),
        ]
    if "mixed_sizes" in payloads:
        parts += [
            f"## {mixed_sizes.TITLE} (goal <= {mixed_sizes.GOAL_RATIO:.2f})",
            mixed_sizes.summary_table(payloads["mixed_sizes"]),
        ]
    return "\n\n".join(parts)


def failed_configurations(payloads):
    """The configurations whose process failed, as ``"backend model side"``.

    Args:
        payloads: dict benchmark name -> the payload its ``run`` returned.
    """
    return [
        f"{row['backend']} {row['model']} {row['side']}"
        for payload in payloads.values()
        for row in payload["rows"]
        if row.get("failed")
    ]


def main():
    parser = command_line.argument_parser(__doc__)
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help="comma-separated benchmarks to run (default: %(default)s)",
    )
    parser.add_argument(
        "--sides",
        default=None,
        help="comma-separated image sides of ats_vs_cnn (default: "
        f"{','.join(map(str, ats_vs_cnn.SIDES))}, --quick: "
        f"{','.join(map(str, ats_vs_cnn.QUICK_SIDES))})",
    )
    parser.add_argument(
        "--memory-budget-gib",
        type=float,
        default=ats_vs_cnn.MEMORY_BUDGET_GIB,
        help="largest predicted memory of a CNN run (default: %(default)s)",
    )
    args = parser.parse_args()
    options = command_line.run_options(args)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    if not names or set(names) - set(BENCHMARKS):
        parser.error(f"--only must name some of {list(BENCHMARKS)}")
    extra = {
        "ats_vs_cnn": {
            "memory_budget_gib": args.memory_budget_gib,
            "sides": [int(s) for s in args.sides.split(",")] if args.sides else None,
        }
    }

    start = time.perf_counter()
    payloads = {}
    for name in names:
        print(f"{name}:", flush=True)
        payloads[name] = BENCHMARKS[name].run(options, **extra.get(name, {}))
    seconds = time.perf_counter() - start

    command = shlex.join(["python", "benchmarks/run.py", *sys.argv[1:]])
    text = summary(payloads, seconds, command)
    reporting.write_results(
        "summary",
        {
            "quick": args.quick,
            "seconds": seconds,
            "command": command,
            "benchmarks": names,
            "backends": list(options.backends),
            "machine_at_end": reporting.machine_description(),
        },
        text,
        options.output,
    )
    print("\n" + text)
    print(f"\nResults in {options.output} ({seconds:.0f} s)")
    failed = failed_configurations(payloads)
    if failed:
        sys.exit(f"{len(failed)} configuration(s) failed: " + ", ".join(failed))


if __name__ == "__main__":
    main()
