"""Attention sampling: sample positions from attention, extract patches there,
and average their features with unbiased estimators.

The recommended entry point is ``attention_sampling``; ``SamplePatches`` and
``Expectation`` are its parts, and ``sample`` and ``expected`` the functions
on tensors that they are built from.
"""

from .builder import AttentionSampling, attention_sampling
from .expectation import Expectation, expected
from .sample_patches import SamplePatches
from .sampling import sample

__all__ = [
    "attention_sampling",
    "AttentionSampling",
    "SamplePatches",
    "Expectation",
    "sample",
    "expected",
]
