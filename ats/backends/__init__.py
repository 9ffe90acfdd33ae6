"""Framework-specific code, one package per Keras backend.

The rest of ``ats`` is written with ``keras.ops`` only. Where a backend has
a faster or necessary way of its own (a fused kernel, a host callback, a
random algorithm, a distribution engine), that code lives in
``ats/backends/<backend>/<module>.py`` and the generic code asks for it
with ``implementation(module, name)``: the module of the active backend is
imported only then, so no framework other than the active one is ever
imported. When the backend has no such module or name, the generic code
runs. Keras's private APIs are wrapped once, in ``keras_internals``.

To add a fast path: write ``ats/backends/<backend>/<module>.py`` defining
``name`` with the generic function's signature, call it through
``implementation`` beside the generic function, and test the two against
each other.
"""

import functools
import importlib

import keras

__all__ = ["implementation"]


def implementation(module, name):
    """The active backend's ``name`` from ``ats.backends.<backend>.<module>``.

    Args:
        module: str, the module under the backend's package
            (``"patches"``, ``"host_call"``, ``"distribution"``, ...).
        name: str, the function, class or constant in that module.

    Returns:
        The attribute, or None when the active backend has no such module or
        no such name in it (the caller then runs its generic code).

    Example:
        >>> from ats.backends import implementation
        >>> implementation("no_such_module", "anything") is None
        True
    """
    return _lookup(keras.backend.backend(), module, name)


@functools.cache
def _lookup(backend, module, name):
    qualified = f"{__name__}.{backend}.{module}"
    try:
        found = importlib.import_module(qualified)
    except ModuleNotFoundError as error:
        # Only a missing fast path means "none"; a fast path that fails to
        # import (a missing framework, a bug) must be reported.
        if error.name not in (qualified, f"{__name__}.{backend}"):
            raise
        return None
    return getattr(found, name, None)
