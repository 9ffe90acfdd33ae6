"""Attention sampling: sample positions from attention, extract patches there,
and average their features with unbiased estimators.

The recommended entry point is ``attention_sampling``; ``SamplePatches`` and
``Expectation`` are its parts, and ``sample`` and ``expected`` the functions
on tensors that they are built from. ``MultiResolutionBatch`` is the
interface ``SamplePatches`` reads patches through (``FromTensors`` for
tensors in memory); ``TotalReshape`` and ``ActivityRegularizer`` are the
small layers the builder uses; ``RestrictAttention`` restricts the
attention to each data point's support (images of different sizes padded
to one batch, foreground masks); ``seeds`` makes draws differ across the
replicas of a distributed run.
"""

from .activity_regularizer import ActivityRegularizer
from .builder import AttentionSampling, attention_sampling
from .expectation import Expectation, expected
from .from_tensors import FromTensors
from .multi_resolution import MultiResolutionBatch
from .sample_patches import SamplePatches
from .sampling import sample
from .support import RestrictAttention
from .total_reshape import TotalReshape

__all__ = [
    "attention_sampling",
    "AttentionSampling",
    "SamplePatches",
    "Expectation",
    "sample",
    "expected",
    "MultiResolutionBatch",
    "FromTensors",
    "TotalReshape",
    "ActivityRegularizer",
    "RestrictAttention",
]
