"""The models of the Megapixel MNIST experiment (paper, section 4.2).

* :func:`ats_model` (:mod:`.model`): attention sampling. The paper's attention
  network (three 3x3 ``tanh`` convolutions to one channel and
  ``SampleSoftmax``) looks at the low-resolution view; ``n_patches`` patches
  of the high-resolution view are sampled from its attention; the paper's
  feature network (four ReLU convolutions, 7x7 then 3x3, global max pooling,
  ``L2Normalize``) runs on each; a ``Dense`` softmax classifies their
  expected features. Both networks are in :mod:`.networks`.
* :func:`full_image_cnn` (:mod:`.baselines`): the "classical architecture" it
  is compared with: the *same* convolution stack applied to the whole
  high-resolution image, global max pooling, ``L2Normalize`` and ``Dense``.
* :func:`low_res_cnn` (:mod:`.baselines`): a CNN on the low-resolution view
  alone.

Every builder returns an uncompiled ``keras.Model`` mapping its inputs to
class probabilities ``(B, n_classes)``. :func:`inspect` (:mod:`.inspection`)
runs an attention-sampling model step by step and returns what it looked at
(the attention map, the patch corners, the patches) for pictures.

Example::

    from ats.models import megapixel_mnist as models

    model = models.ats_model((180, 180, 1), (1500, 1500, 1))
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    seen = models.inspect(model, x_low[:2], x_high[:2])
    seen["attention"].shape, seen["corners"].shape  # (2, 180, 180), (2, 10, 2)
"""

from .baselines import full_image_cnn, low_res_cnn
from .inspection import inspect
from .model import ats_model
from .networks import attention_network, feature_network

__all__ = [
    "attention_network",
    "feature_network",
    "ats_model",
    "full_image_cnn",
    "low_res_cnn",
    "inspect",
    "MODELS",
]

MODELS = {"ats": ("low", "high"), "full-cnn": ("high",), "low-cnn": ("low",)}
"""The model names of the experiment and the views each one reads."""
