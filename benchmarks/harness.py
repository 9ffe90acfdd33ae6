"""What every benchmark of ``benchmarks/`` shares.

* **Timing**: ``time_calls`` runs a function a few times as warm-up (the
  first call compiles), then ``repeats`` times; ``summarize`` reports the
  median with the min and the max.
* **Compiled modes**: ``jit_compile`` and ``compile_function`` give each
  backend its compiled mode (JAX ``jit``, TensorFlow XLA
  ``jit_compile=True``; PyTorch runs eagerly).
* **Memory**: ``MemoryProbe`` reports the peak resident set size (RSS) of a
  phase of the process, read from Linux's ``VmHWM`` after resetting it;
  ``release_free_memory`` first hands the allocator's free pages back to
  the system, so that RSS counts memory in use.
* **Isolation**: ``run_in_subprocess`` runs a benchmark function in a fresh
  Python process under a chosen ``KERAS_BACKEND`` and returns its
  JSON-serializable result, so that each measurement starts from a clean
  process (clean peak memory, no other backend loaded).
* **Command line**: ``argument_parser`` and ``main``, the options every
  benchmark script shares (``--quick``, ``--backends``, ``--output``).
* **Reporting**: ``machine_description`` (cores, memory, library versions,
  load), ``markdown_table`` and ``write_results`` (JSON + Markdown under
  ``benchmarks/results/``).

This file is also the entry point of those subprocesses::

    python benchmarks/harness.py MODULE FUNCTION 'JSON keyword arguments'

runs ``MODULE.FUNCTION(**kwargs)`` (``MODULE`` a file of ``benchmarks/``)
and prints its result as the last line of stdout, after ``RESULT_MARKER``.
"""

import argparse
import ctypes
import importlib
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results"
# Where --quick runs write, so a smoke run never overwrites the reference.
QUICK_RESULTS = RESULTS / "quick"
BACKENDS = ("jax", "torch", "tensorflow")
# How each backend runs in the benchmarks: its compiled mode where it has one.
MODES = {"jax": "jit (XLA)", "tensorflow": "jit_compile=True (XLA)", "torch": "eager"}
RESULT_MARKER = "BENCHMARK-RESULT "
MIB = 2**20


# ---------------------------------------------------------------------------
# Timing


def block(result):
    """Wait until ``result`` is computed (JAX dispatches asynchronously).

    Args:
        result: a tensor, a nest of tensors, or anything else.

    Returns:
        ``result`` itself.
    """
    items = (
        result.values()
        if isinstance(result, dict)
        else (result if isinstance(result, (list, tuple)) else [result])
    )
    for item in items:
        if hasattr(item, "block_until_ready"):
            item.block_until_ready()
    return result


def time_calls(fn, repeats, warmup=2, budget_s=None, min_repeats=3):
    """Seconds taken by each of ``repeats`` calls of ``fn`` after ``warmup``.

    ``fn`` must return only once its work is done (wrap results of
    asynchronous backends in ``block``).

    Args:
        fn: callable without arguments.
        repeats: int >= 0, the number of timed calls.
        warmup: int >= 0, untimed calls first (compilation, caches).
        budget_s: optional float: stop timing once ``min_repeats`` calls
            are done and the timed calls took more than this in all (for
            configurations whose calls take minutes).
        min_repeats: int, the calls timed at least when ``budget_s`` is set.

    Returns:
        list of floats, wall-clock seconds, one per timed call.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if budget_s is not None and len(times) >= min_repeats and sum(times) > budget_s:
            break
    return times


def summarize(values, scale=1.0):
    """Median, min and max of ``values`` multiplied by ``scale``.

    Args:
        values: non-empty sequence of numbers.
        scale: factor applied to every statistic (e.g. 1000 for s -> ms).

    Returns:
        ``{"median": ..., "min": ..., "max": ..., "n": len(values)}``.
    """
    return {
        "median": scale * statistics.median(values),
        "min": scale * min(values),
        "max": scale * max(values),
        "n": len(values),
    }


def interleaved_times(functions, repeats, warmup=2):
    """Time several functions in alternation, for ratios robust to drift.

    Every function is warmed up first; then each round times every function
    once, in turn, so a slow-down of the machine hits all of them alike.

    Args:
        functions: dict name -> callable without arguments.
        repeats: int, the number of rounds.
        warmup: int, untimed calls of each function first.

    Returns:
        dict name -> list of ``repeats`` seconds.
    """
    for fn in functions.values():
        time_calls(fn, 0, warmup)
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            times[name] += time_calls(fn, 1, warmup=0)
    return times


def ratio(numerator, denominator):
    """``numerator / denominator`` of two ``summarize`` medians."""
    return numerator["median"] / denominator["median"]


# ---------------------------------------------------------------------------
# Compiled modes


def backend():
    """The name of the active Keras backend."""
    import keras

    return keras.backend.backend()


def jit_compile():
    """The ``jit_compile`` argument of ``Model.compile`` for this backend.

    True (XLA) on JAX and TensorFlow; False on PyTorch, which runs eagerly
    (Keras's ``torch.compile`` path is experimental and slow to compile).
    """
    return backend() != "torch"


def compile_function(fn):
    """``fn`` in the active backend's compiled mode.

    JAX: ``jax.jit``; TensorFlow: ``tf.function(jit_compile=True)``;
    PyTorch: ``fn`` unchanged (eager).
    """
    name = backend()
    if name == "jax":
        import jax

        return jax.jit(fn)
    if name == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    return fn


# ---------------------------------------------------------------------------
# Memory


def _status_bytes(field):
    """A ``kB`` field of ``/proc/self/status`` in bytes, or None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def current_rss():
    """The resident set size of this process now, in bytes (or None)."""
    return _status_bytes("VmRSS")


def peak_rss():
    """The peak resident set size of this process, in bytes.

    ``VmHWM`` on Linux (which ``MemoryProbe`` can reset), otherwise
    ``getrusage(RUSAGE_SELF).ru_maxrss``, the peak over the whole process.
    """
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    scale = 1 if sys.platform == "darwin" else 1024  # bytes vs kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _reset_peak_rss():
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); True on success."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def release_free_memory():
    """Hand the C allocator's free heap pages back to the operating system.

    glibc keeps pages that were freed (the XLA compiler's working memory, a
    finished step's buffers) in the process, where they still count in its
    RSS; ``malloc_trim(0)`` releases them, so that RSS read afterwards is
    memory in use.

    Returns:
        True if done (glibc), False where there is no ``malloc_trim``.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim(0)
    return True


class MemoryProbe:
    """The peak resident set size (RSS) of one phase of this process.

    ``start()`` resets the kernel's peak-RSS mark (``VmHWM``) to the current
    RSS and records that RSS as the phase's baseline; ``stop()`` reads the
    peak reached since. Where the mark cannot be reset (not Linux), the peak
    is the whole process's ``ru_maxrss`` and ``method`` says so.

    Example:
        >>> probe = MemoryProbe().start()
        >>> train()
        >>> probe.stop()  # {"baseline_mib": ..., "peak_mib": ..., ...}
    """

    def start(self):
        """Reset the peak mark and record the baseline; returns ``self``."""
        self.reset = _reset_peak_rss()
        self.baseline = current_rss() or 0
        return self

    def stop(self):
        """The phase's memory, in MiB.

        Returns:
            dict with ``baseline_mib`` (RSS when the phase started),
            ``peak_mib`` (peak RSS during the phase) and ``method``.
        """
        return {
            "baseline_mib": self.baseline / MIB,
            "peak_mib": peak_rss() / MIB,
            "method": "VmHWM reset at the start of the phase"
            if self.reset
            else "ru_maxrss of the whole process",
        }


# ---------------------------------------------------------------------------
# Isolation


def run_in_subprocess(module, function, kwargs, keras_backend, timeout=None):
    """Run ``module.function(**kwargs)`` in a fresh process; return its result.

    Args:
        module: str, the name of a file of ``benchmarks/`` without ``.py``.
        function: str, a function of that module returning JSON-serializable
            data.
        kwargs: dict of JSON-serializable keyword arguments.
        keras_backend: str, the ``KERAS_BACKEND`` of the process.
        timeout: seconds, or None.

    Returns:
        The function's result.

    Raises:
        RuntimeError: with the process's stderr, if it failed.
    """
    env = {**os.environ, "KERAS_BACKEND": keras_backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        module,
        function,
        json.dumps(kwargs),
    ]
    process = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout
    )
    results = [
        line for line in process.stdout.splitlines() if line.startswith(RESULT_MARKER)
    ]
    if process.returncode != 0 or not results:
        raise RuntimeError(
            f"{module}.{function}(**{kwargs}) on {keras_backend} failed with "
            f"exit code {process.returncode}:\n{process.stderr[-4000:]}"
        )
    return json.loads(results[-1][len(RESULT_MARKER) :])


def run_in_process(module, function, kwargs, keras_backend):
    """``run_in_subprocess``'s stand-in running in this process (for tests).

    ``keras_backend`` must be this process's backend. Arguments and result
    go through JSON as they would between processes; memory figures are not
    isolated.
    """
    if keras_backend != backend():
        raise ValueError(f"this process runs {backend()}, not {keras_backend}")
    return json.loads(_call(module, function, json.dumps(kwargs)))


def _call(module, function, kwargs):
    """``module.function(**kwargs)`` with ``kwargs`` and result as JSON."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    result = getattr(importlib.import_module(module), function)(**json.loads(kwargs))
    return json.dumps(result)


def _worker_main(argv):
    print(RESULT_MARKER + _call(*argv), flush=True)


# ---------------------------------------------------------------------------
# Reporting


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description():
    """The machine and software a run measured, as a JSON-ready dict.

    Library versions are read from the installed distributions (no backend
    is imported). The load average tells whether other work shared the
    machine: compare it with ``usable_cores``.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    memory = pages * os.sysconf("SC_PAGE_SIZE") if pages else None
    versions = {
        name: _version(name)
        for name in (
            "keras",
            "jax",
            "jaxlib",
            "torch",
            "tensorflow",
            "tensorflow-cpu",
            "numpy",
        )
    }
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": None if memory is None else round(memory / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {k: v for k, v in versions.items() if v is not None},
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def describe_machine_markdown(machine):
    """One Markdown line describing ``machine_description()``'s result."""
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    return (
        f"{machine['cpu']}, {machine['usable_cores']} usable cores, "
        f"{machine['memory_gib']} GiB RAM; {versions}; load average "
        f"{machine['load_average'][0]} at start; {machine['date']}"
    )


def markdown_table(headers, rows):
    """A Markdown table of ``rows`` (sequences of cells) under ``headers``."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def format_stats(stats, digits=1):
    """``"median (min-max)"`` of a ``summarize`` result."""
    return (
        f"{stats['median']:.{digits}f} "
        f"({stats['min']:.{digits}f}-{stats['max']:.{digits}f})"
    )


def write_results(name, payload, markdown, directory=RESULTS):
    """Write ``name.json`` and ``name.md`` into ``directory``.

    Args:
        name: str, the file stem.
        payload: JSON-serializable data.
        markdown: str, the Markdown report.
        directory: the output directory (created if missing).

    Returns:
        The paths written, ``(json_path, markdown_path)``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{name}.json"
    markdown_path = directory / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    markdown_path.write_text(markdown.rstrip() + "\n")
    return json_path, markdown_path


# ---------------------------------------------------------------------------
# Command line


def argument_parser(doc):
    """The options shared by the benchmark scripts, described by ``doc``.

    ``--quick`` (the smoke configuration), ``--backends`` (comma-separated,
    default all three) and ``--output`` (default ``RESULTS``, or
    ``QUICK_RESULTS`` with ``--quick``).
    """
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
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"results directory (default: {RESULTS.relative_to(BENCHMARKS.parent)}"
        f", or {QUICK_RESULTS.relative_to(BENCHMARKS.parent)} with "
        "--quick)",
    )
    return parser


def run_arguments(args):
    """``run`` keyword arguments from ``argument_parser``'s parsed options."""
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    unknown = set(backends) - set(BACKENDS)
    if unknown or not backends:
        raise SystemExit(
            f"--backends must name some of {BACKENDS}, got {args.backends!r}"
        )
    output = args.output or (QUICK_RESULTS if args.quick else RESULTS)
    return {"backends": backends, "quick": args.quick, "output": output}


def main(run, doc):
    """Run one benchmark script: parse the shared options, call ``run``."""
    run(**run_arguments(argument_parser(doc).parse_args()))


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
