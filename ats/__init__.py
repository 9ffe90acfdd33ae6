"""Attention sampling for megapixel images on Keras 3.

Implements "Processing Megapixel Images with Deep Attention-Sampling Models"
(Katharopoulos & Fleuret, ICML 2019) on top of Keras 3, running unchanged on
the JAX, PyTorch and TensorFlow backends.
"""

__version__ = "0.1.0"
