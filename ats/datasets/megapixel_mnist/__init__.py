"""Megapixel MNIST: the synthetic large-image data set of attention sampling.

Katharopoulos & Fleuret (ICML 2019) built this data set to show where plain
CNNs struggle on large images. Each image is an empty (black) canvas, 1500x1500
in the paper, that holds five 28x28 MNIST digits at random non-overlapping
positions: three of them show the *target* class, which is the image's label,
and two show other classes (any class but the target). About 50 noise
scribbles, each a pair of straight strokes at random angles inside a
digit-sized 28x28 box, are spread over the whole canvas. They may overlap
anything and are meant to look like pen strokes but not like digits. A model
sees two views of an image: the full-resolution canvas ``x_high`` and a
low-resolution view ``x_low``, the canvas downscaled by ``scale`` (0.12 in the
paper) with area averaging (:func:`downscale`).

A data set is small on disk. :meth:`MegapixelMNIST.save` stores only its
*description*: the parameters (``config.json``), the pixels of the digits it
uses (``digits.npz``) and, per split, which digit goes where and the stroke
end points of the noise (``train.npz``, ``test.npz``). Images are rendered on
the fly from that description, deterministically, so a saved data set renders
identically everywhere without its digit source. Nothing is pickled.

Train and test images draw their digits from disjoint pools: with the keras
source the official MNIST train and test sets, otherwise a seeded split of
each class's digits (``test_digit_fraction`` of them go to the test pool).
The digit sources are described in :mod:`.digits`.

Modules, in the order of the data's flow:

* :mod:`.config`: :class:`MegapixelMNISTConfig` and the constants.
* :mod:`.digits`: the digit sources and their train and test pools.
* :mod:`.description`: digit placement and noise strokes of each image.
* :mod:`.rendering`: drawing a description, and :func:`downscale`.
* :mod:`.split`, :mod:`.dataset`: :class:`MegapixelMNISTSplit`,
  :class:`MegapixelMNIST`.
* :mod:`.storage`: the description on disk.
* :mod:`.arrays`: batch arrays the backends take without a copy.
* :mod:`.sequence`: :class:`MegapixelMNISTSequence`, batches for Keras.

Example::

    from ats.datasets.megapixel_mnist import (
        MegapixelMNIST, MegapixelMNISTConfig, MegapixelMNISTSequence)

    data = MegapixelMNIST.generate(MegapixelMNISTConfig.paper())
    data.save("megapixel_mnist")
    train = MegapixelMNIST.load("megapixel_mnist").split("train")
    x_low, x_high, y = train.render(0)  # (180, 180, 1), (1500, 1500, 1), int
    batches = MegapixelMNISTSequence(train, batch_size=16, shuffle=True)
"""

from .config import (
    DIGIT_SIZE,
    N_CLASSES,
    N_DIGITS,
    N_TARGET_DIGITS,
    SPLITS,
    VIEWS,
    MegapixelMNISTConfig,
)
from .dataset import MegapixelMNIST
from .rendering import downscale
from .sequence import MegapixelMNISTSequence
from .split import MegapixelMNISTSplit

__all__ = [
    "DIGIT_SIZE",
    "N_CLASSES",
    "N_DIGITS",
    "N_TARGET_DIGITS",
    "SPLITS",
    "VIEWS",
    "MegapixelMNISTConfig",
    "MegapixelMNIST",
    "MegapixelMNISTSplit",
    "MegapixelMNISTSequence",
    "downscale",
]
