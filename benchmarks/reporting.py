"""Reporting: the machine measured, Markdown tables and the result files.

Every benchmark writes ``NAME.json`` (``payload``: the benchmark, the mode,
the machine, the settings and the rows) and ``NAME.md`` (``markdown_report``)
under ``RESULTS``, or ``QUICK_RESULTS`` for a smoke run.
"""

import importlib.metadata
import json
import os
import platform
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results"
# Where --quick runs write, so a smoke run never overwrites the reference.
QUICK_RESULTS = RESULTS / "quick"
QUICK_NOTE = "**Quick smoke run: small sizes, few repetitions; not reference figures.**"
LIBRARIES = ("keras", "jax", "jaxlib", "torch", "tensorflow", "tensorflow-cpu", "numpy")


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
    versions = {name: _version(name) for name in LIBRARIES}
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
    """``"median (min-max)"`` of a ``timing.summarize`` result."""
    return (
        f"{stats['median']:.{digits}f} "
        f"({stats['min']:.{digits}f}-{stats['max']:.{digits}f})"
    )


def payload(name, quick, machine, settings, rows, **extra):
    """The JSON payload of a benchmark's run.

    Args:
        name: str, the benchmark.
        quick: bool, whether it is a smoke run.
        machine: ``machine_description()`` taken when the run started.
        settings: dict, the run's configuration.
        rows: list of dicts, the measurements.
        **extra: further top-level entries (e.g. ``ratios``).
    """
    return {
        "benchmark": name,
        "quick": quick,
        "machine": machine,
        "settings": settings,
        "rows": rows,
        **extra,
    }


def markdown_report(title, payload, sections, details=()):
    """A benchmark's Markdown report.

    Args:
        title: str, the heading (without ``##``).
        payload: the run's ``payload``: marks a smoke run as such and gives
            the machine.
        sections: Markdown paragraphs and tables, before the machine line.
        details: Markdown parts after it; empty ones are left out.
    """
    parts = [
        f"## {title}",
        QUICK_NOTE if payload["quick"] else "",
        *sections,
        "Machine: " + describe_machine_markdown(payload["machine"]),
        *details,
    ]
    return "\n\n".join(part for part in parts if part)


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


def save_figure(figure, title, quick, path, dpi=110):
    """Give ``figure`` its title (marked as a smoke run when ``quick``),
    write it to ``path`` as PNG and close it.

    Returns:
        ``path``.
    """
    import matplotlib.pyplot as plt

    figure.suptitle(title + (" (quick smoke run)" if quick else ""))
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path
