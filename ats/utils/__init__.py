"""Utility layers and regularizers for attention-sampling models.

Submodules:

* :mod:`ats.utils.layers`: small Keras layers used to build attention
  networks (:class:`~ats.utils.layers.SampleSoftmax`,
  :class:`~ats.utils.layers.L2Normalize`,
  :class:`~ats.utils.layers.ResizeImages`,
  :class:`~ats.utils.layers.TotalReshape`,
  :class:`~ats.utils.layers.ActivityRegularizer`) and training-time image
  augmentations (:class:`~ats.utils.layers.ImageLinearTransform`,
  :class:`~ats.utils.layers.ImagePan`).
* :mod:`ats.utils.regularizers`: regularizers for attention distributions
  (:func:`~ats.utils.regularizers.multinomial_entropy`,
  :class:`~ats.utils.regularizers.MultinomialEntropy`).

Everything here uses only backend-agnostic Keras 3 APIs and is registered for
serialization under the ``"ats"`` package.
"""

from ats.utils import layers, regularizers

__all__ = ["layers", "regularizers"]
