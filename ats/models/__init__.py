"""Model builders for attention-sampling experiments.

Submodules:
    megapixel_mnist: the attention-sampling model of the Megapixel MNIST
        experiment, its attention and feature networks, and the two CNN
        baselines (the whole high-resolution image, the low-resolution view).
    backbones: feature networks by name (``feature_network``): the small CNN
        and ``keras.applications`` ResNet50, EfficientNetB0, MobileNetV3Small.
    classifier: an attention-sampling classifier of images of any size
        (``build_classifier``) and ``inspect``.
"""

from ats.models import backbones, classifier, megapixel_mnist
from ats.models.backbones import FEATURE_NETWORKS, feature_network
from ats.models.classifier import build_classifier

__all__ = [
    "megapixel_mnist",
    "backbones",
    "classifier",
    "FEATURE_NETWORKS",
    "feature_network",
    "build_classifier",
]
