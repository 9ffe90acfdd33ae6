"""The original library's module path ``ats.core.ats_layer`` (deprecated).

The original library defined ``SamplePatches``, ``Expectation`` and
``attention_sampling`` here; they are ``ats.core``'s, with the same
arguments. Reading one of them from this module warns with a
``DeprecationWarning`` that gives the modern import::

    from ats.core import SamplePatches, Expectation, attention_sampling
"""

import warnings

from .builder import attention_sampling
from .expectation import Expectation
from .sample_patches import SamplePatches

_NAMES = {
    "SamplePatches": SamplePatches,
    "Expectation": Expectation,
    "attention_sampling": attention_sampling,
}

__all__ = []

# Only reachable through ``__getattr__``, which warns.
del attention_sampling, Expectation, SamplePatches


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    if name not in _NAMES:
        raise AttributeError(
            f"module 'ats.core.ats_layer' has no attribute {name!r}; it keeps "
            f"only the original library's {sorted(_NAMES)} (import them from "
            "ats.core)"
        )
    warnings.warn(
        f"ats.core.ats_layer is the original library's module: write "
        f"`from ats.core import {name}`",
        DeprecationWarning,
        stacklevel=2,
    )
    return _NAMES[name]
