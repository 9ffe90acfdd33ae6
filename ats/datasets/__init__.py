"""Data sets for attention-sampling experiments.

Submodules:
    megapixel_mnist: Megapixel MNIST, the synthetic large-image data set of
        the paper (digits scattered on a large canvas, rendered on the fly).
    gigapixel_mnist: Megapixel MNIST scaled up into pyramidal tiled TIFFs,
        read patch by patch (imported on demand: ``import
        ats.datasets.gigapixel_mnist``).
    synthetic_sizes: a small synthetic data set of images of mixed sizes,
        aspect ratios and formats, with its ``manifest.csv`` for ``ats fit``.
    speed_limits: the paper's Speed Limits (Swedish Traffic Signs):
        download, parse, filter and write a manifest.
    colon_cancer: the paper's colon cancer images (CRCHistoPhenotypes):
        download, parse and write a manifest.
    downloads: downloading with checksums, unpacking archives.

The last four are imported on demand (``from ats.datasets import
speed_limits``).
"""

from ats.datasets import megapixel_mnist

__all__ = ["megapixel_mnist"]
