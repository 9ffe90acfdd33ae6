"""Isolation: a benchmark function run in a fresh Python process.

``run_in_subprocess`` runs a function of a module of ``benchmarks/`` in a
new process under a chosen ``KERAS_BACKEND`` and returns its
JSON-serializable result, so that each measurement starts from a clean
process (clean peak memory, no other backend loaded); ``run_in_process`` is
its stand-in for tests.

This file is the entry point of those processes::

    python benchmarks/isolation.py MODULE FUNCTION 'JSON keyword arguments'

runs ``MODULE.FUNCTION(**kwargs)`` and prints its result as the last line of
stdout, after ``RESULT_MARKER``.
"""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from compiled import backend

BENCHMARKS = Path(__file__).resolve().parent
RESULT_MARKER = "BENCHMARK-RESULT "


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
    entry_point = str(BENCHMARKS / "isolation.py")
    command = [sys.executable, entry_point, module, function, json.dumps(kwargs)]
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


def run_in_process(module, function, kwargs, keras_backend, timeout=None):
    """``run_in_subprocess``'s stand-in running in this process (for tests).

    ``keras_backend`` must be this process's backend; ``timeout`` is not
    enforced. Arguments and result go through JSON as they would between
    processes; memory figures are not isolated.
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


if __name__ == "__main__":
    print(RESULT_MARKER + _call(*sys.argv[1:]), flush=True)
