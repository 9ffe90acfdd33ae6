"""Every ``>>>`` example in the docstrings of ``ats`` runs as a doctest.

Collected on JAX only (``tests/docs/conftest.py``); the modules of another
backend's package (``ats/backends/torch/...``) run in a subprocess on their
own backend, so that no framework is imported under another. Each example
runs in a namespace of its own, not in its module's: an example must import
what it uses, as a reader would. A module that fails to import fails its test;
a module without examples passes with nothing to run. Scripts (``__main__``
modules) are not modules to import and hold no examples.

Run one module by hand: ``python tests/docs/test_docstrings.py ats.core.sampling``.
"""

import doctest
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ats"
BACKENDS = ("jax", "torch", "tensorflow")
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_path(module):
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


MODULES = [
    module_name(path)
    for path in sorted(PACKAGE.rglob("*.py"))
    if path.name != "__main__.py"
]


def backend_of(module):
    """The backend whose package holds ``module`` (``None``: any backend)."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "backends" and parts[2] in BACKENDS:
        return parts[2]
    return None


def run_doctests(module):
    """Run the examples of ``module``'s docstrings.

    Returns:
        ``(failed, attempted, report)``: the numbers of failed and of run
        examples, and doctest's report of the failures.
    """
    imported = importlib.import_module(module)
    report = []
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    for test in doctest.DocTestFinder().find(imported, module, globs={}):
        test.globs = {"__name__": "__main__"}
        runner.run(test, out=report.append)
    return runner.failures, runner.tries, "".join(report)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    backend = backend_of(module) or "jax"
    if backend == "jax":
        failed, _, report = run_doctests(module)
    elif ">>>" not in module_path(module).read_text():
        return  # no example to run: not worth starting the backend for
    else:
        result = subprocess.run(
            [sys.executable, __file__, module],
            env={**os.environ, "KERAS_BACKEND": backend},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode in (0, 1), result.stderr
        failed, report = result.returncode, result.stdout
    assert not failed, f"{module}: failing docstring examples\n{report}"


if __name__ == "__main__":
    sys.path.insert(0, str(PACKAGE.parent))  # this checkout's ats
    failed, _, report = run_doctests(sys.argv[1])
    print(report, end="")
    sys.exit(1 if failed else 0)
