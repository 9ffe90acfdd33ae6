"""Model builders for attention-sampling experiments.

Submodules:
    megapixel_mnist: the attention-sampling model of the Megapixel MNIST
        experiment, its attention and feature networks, and the two CNN
        baselines (the whole high-resolution image, the low-resolution view).
"""

from ats.models import megapixel_mnist

__all__ = ["megapixel_mnist"]
