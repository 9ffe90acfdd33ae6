"""Data sets for attention-sampling experiments.

Submodules:
    megapixel_mnist: Megapixel MNIST, the synthetic large-image data set of
        the paper (digits scattered on a large canvas, rendered on the fly).
"""

from ats.datasets import megapixel_mnist

__all__ = ["megapixel_mnist"]
