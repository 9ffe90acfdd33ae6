"""Attention sampling on images that are never tensors.

The attention network runs on the low-resolution view inside the model;
positions are sampled from its attention in the same step; only the patches
at those positions are read, on the host, from ``ats.data`` patch sources
(numpy arrays, memmaps, zarr arrays, pyramidal TIFFs, OpenSlide slides);
the feature network, ``Expectation`` and the loss follow, with gradients to
both networks. Works with ``fit``, ``evaluate`` and ``predict`` on JAX,
PyTorch and TensorFlow. See ``docs/gigapixel.md``.

* ``lazy_attention_sampling``: the builder, like ``attention_sampling`` but
  called on ``[x_low, x_high_ref]``.
* ``SourceSequence``: the ``PyDataset`` that yields ``[x_low, x_high_ref]``.
* ``BucketedSequence``: the ``PyDataset`` for images of different sizes,
  yielding ``[x_low, x_high_ref, support]`` with low views padded to a few
  bucket shapes (``bucket_shape``, ``bucket_side``; at most a given number of them:
  ``choose_buckets``).
* ``SourcePatches``, ``FromSources``: the parts (sampling layer and
  in-graph view of host sources); ``host_call``: the backend callback.
"""

from .buckets import BucketedSequence, bucket_shape, bucket_side, choose_buckets
from .from_sources import FromSources, read_patches
from .host_call import host_call, host_call_supports_jit
from .layers import LazyAttentionSampling, SourcePatches, lazy_attention_sampling
from .sequence import SourceSequence

__all__ = [
    "lazy_attention_sampling",
    "LazyAttentionSampling",
    "SourcePatches",
    "SourceSequence",
    "BucketedSequence",
    "bucket_shape",
    "bucket_side",
    "choose_buckets",
    "FromSources",
    "read_patches",
    "host_call",
    "host_call_supports_jit",
]
