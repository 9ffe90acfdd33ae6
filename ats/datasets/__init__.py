"""Data sets for attention-sampling experiments.

Submodules:
    megapixel_mnist: Megapixel MNIST, the synthetic large-image data set of
        the paper (digits scattered on a large canvas, rendered on the fly).
    gigapixel_mnist: Megapixel MNIST scaled up into pyramidal tiled TIFFs,
        read patch by patch (imported on demand: ``import
        ats.datasets.gigapixel_mnist``).
"""

from ats.datasets import megapixel_mnist

__all__ = ["megapixel_mnist"]
