"""Sources of multi-resolution data that patches are read from.

In-graph (tensors): ``MultiResolutionBatch`` is the interface the sampling
layers read patches through and ``FromTensors`` implements it for tensors in
memory. On the host (numpy, never a whole high-resolution image):
``PatchSource`` is one image read patch by patch, with ``ArraySource``
(numpy arrays, memmaps, zarr arrays), ``TiffSource`` (pyramidal tiled TIFF)
and ``SlideSource`` (OpenSlide-compatible slides); ``ats.lazy`` trains models
on them. ``MultiResolutionBatch`` and ``FromTensors`` are defined in
``ats.core`` (which reads patches through them) and re-exported here.
``ShuffledSequence`` is the batch order (shuffled per epoch from a seed)
that the library's ``PyDataset`` s share.
"""

from ..core import FromTensors, MultiResolutionBatch
from .files import ImageInfo, ImageSource, open_image, probe_image
from .manifest import (
    Checked,
    Manifest,
    ManifestError,
    ManifestRow,
    check_manifest,
    read_manifest,
)
from .masks import load_mask, otsu_mask
from .ordering import ShuffledSequence
from .slide import SlideSource
from .sources import (
    ArraySource,
    PatchReadError,
    PatchSource,
    SourceError,
    get_source,
    read_many,
    read_threads,
    set_read_threads,
)
from .tiff import TiffSource

__all__ = [
    "MultiResolutionBatch",
    "FromTensors",
    "PatchSource",
    "ArraySource",
    "TiffSource",
    "SlideSource",
    "PatchReadError",
    "SourceError",
    "get_source",
    "read_many",
    "read_threads",
    "set_read_threads",
    "ShuffledSequence",
    "ImageInfo",
    "ImageSource",
    "open_image",
    "probe_image",
    "otsu_mask",
    "load_mask",
    "read_manifest",
    "check_manifest",
    "Manifest",
    "ManifestRow",
    "ManifestError",
    "Checked",
]
