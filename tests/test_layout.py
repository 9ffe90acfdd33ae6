"""The package's layering, read from the code's own imports.

Imports only go down the layers of ``LAYERS`` (a module may import its own
layer and those below it), and the frameworks themselves (``jax``,
``torch``, ``tensorflow``) are imported only under ``ats/backends/<name>/``,
so that no backend's code is loaded under another (``docs/architecture.md``
draws the same picture).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ats"

# Bottom to top. A name matches a module and everything under it; the
# distribution engines in ``ats/backends/<name>/distribution.py`` belong to
# the distribution layer, the rest of ``ats/backends`` to the bottom one.
LAYERS = (
    ("ats", "ats.checks", "ats.backends"),
    ("ats.ops",),
    ("ats.core",),
    ("ats.utils", "ats.data"),
    ("ats.lazy",),
    ("ats.distribute", "ats.backends.*.distribution"),
    ("ats.models", "ats.datasets"),
    ("ats.training",),
    ("ats.experiments",),
    ("ats.cli",),
)
FRAMEWORKS = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _matches(module, pattern):
    parts, wanted = module.split("."), pattern.split(".")
    if len(parts) < len(wanted):
        return False
    return all(w in ("*", p) for p, w in zip(parts, wanted))


def layer_of(module):
    """The index in ``LAYERS`` of the most specific pattern matching
    ``module``."""
    best = None
    for index, patterns in enumerate(LAYERS):
        for pattern in patterns:
            if _matches(module, pattern) and (
                best is None or len(pattern.split(".")) > best[1]
            ):
                best = (index, len(pattern.split(".")))
    return best[0]


def _imports(path):
    """The absolute names of the modules ``path`` imports, with line numbers."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            yield name, node.lineno
            for alias in node.names:
                yield f"{name}.{alias.name}", node.lineno


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_only_go_down(path):
    module = _module_name(path)
    upward = []
    for name, line in _imports(path):
        if name.split(".")[0] != "ats":
            continue
        if _module_name(PACKAGE / "__init__.py") == name:
            continue
        if layer_of(name) > layer_of(module):
            upward.append(f"line {line}: {name} (layer {layer_of(name)})")
    assert not upward, (
        f"{module} (layer {layer_of(module)}) imports from layers above it: "
        + "; ".join(upward)
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_frameworks_are_imported_only_by_their_backend_package(path):
    module = _module_name(path)
    wrong = [
        f"line {line}: {name}"
        for name, line in _imports(path)
        if name.split(".")[0] in FRAMEWORKS
        and not module.startswith(f"ats.backends.{FRAMEWORKS[name.split('.')[0]]}")
    ]
    assert not wrong, f"{module} imports a framework outside ats/backends: {wrong}"


def test_layer_of_knows_the_special_cases():
    assert layer_of("ats.backends.jax.patches") == 0
    assert layer_of("ats.backends.jax.distribution") == layer_of("ats.distribute")
    assert layer_of("ats.cli.mnist") == len(LAYERS) - 1
