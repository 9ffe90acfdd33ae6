"""``ats.backends``: each backend's code is found lazily, and only its own."""

import sys

import pytest

from ats.backends import implementation

OTHERS = {
    "jax": ("torch", "tensorflow"),
    "torch": ("jax", "tensorflow"),
    "tensorflow": ("jax", "torch"),
}


def test_a_missing_module_or_name_is_none():
    assert implementation("no_such_module", "anything") is None
    assert implementation("patches", "no_such_name") is None


def test_the_fast_paths_of_each_backend(backend):
    found = {
        module: implementation(module, name) is not None
        for module, name in (
            ("patches", "extract_patches"),
            ("host_call", "host_call"),
            ("random", "uniform"),
            ("replicas", "replica_index"),
            ("images", "supports_jit"),
            ("distribution", "configure"),
        )
    }
    expected = {
        "jax": {"patches", "host_call", "distribution"},
        "torch": {"patches", "replicas", "distribution"},
        "tensorflow": {"host_call", "random", "replicas", "images", "distribution"},
    }[backend]
    assert {module for module, present in found.items() if present} == expected


@pytest.mark.parametrize(
    "module",
    [
        "ats.backends.jax.patches",
        "ats.backends.torch.patches",
        "ats.backends.tensorflow.random",
    ],
)
def test_other_backends_code_is_never_imported(backend, module):
    import ats.core
    import ats.lazy  # noqa: F401

    if module.split(".")[2] != backend:
        assert module not in sys.modules
