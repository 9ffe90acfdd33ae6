"""Keras layers used to build attention-sampling models.

Every layer here is written with backend-agnostic Keras 3 APIs
(``keras.ops``, ``keras.random``, ``keras.layers``), so it runs unchanged on
the JAX, PyTorch and TensorFlow backends, and is registered for serialization
under the ``"ats"`` package (``model.save("m.keras")`` /
``keras.models.load_model`` work once :mod:`ats.utils` is imported).

Layers:

* :class:`SampleSoftmax`: softmax over all positions of a sample (the
  attention distribution), with optional uniform smoothing.
* :class:`L2Normalize`: unit L2 norm along an axis, safe at zero.
* :class:`ResizeImages`: image resizing (e.g. the low resolution view).
* :class:`LocalContrast`: where an image's structures are, a content prior
  for the attention's logits.
* :class:`TotalReshape`: reshape that includes the batch axis (defined in
  ``ats.core``, which builds models with it).
* :class:`ActivityRegularizer`: identity that adds ``regularizer(x)`` to the
  model's losses (defined in ``ats.core``).
* :class:`ImageLinearTransform`: training-time random brightness/contrast.
* :class:`ImagePan`: training-time random translation.
"""

from ...core.activity_regularizer import ActivityRegularizer
from ...core.total_reshape import TotalReshape
from .augmentation import ImageLinearTransform, ImagePan
from .l2_normalize import L2Normalize
from .local_contrast import LocalContrast
from .resize_images import ResizeImages
from .sample_softmax import SampleSoftmax

__all__ = [
    "ActivityRegularizer",
    "ImageLinearTransform",
    "ImagePan",
    "L2Normalize",
    "LocalContrast",
    "ResizeImages",
    "SampleSoftmax",
    "TotalReshape",
]
