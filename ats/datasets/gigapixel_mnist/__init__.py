"""Gigapixel MNIST: Megapixel MNIST scaled up into pyramidal tiled TIFFs.

Each image is a Megapixel MNIST image (five digits, three of them of the
target class, and noise scribbles; see :mod:`ats.datasets.megapixel_mnist`)
drawn on a canvas ``zoom = side / base_side`` times larger, 20,000 to
100,000 pixels a side and more, and written tile by tile as a pyramidal
tiled TIFF (JPEG or deflate tiles), so neither writing nor reading ever
holds the whole image.

Scaling the canvas alone would leave a digit either invisible in a small
low-resolution view or far larger than a patch. So every glyph (a digit, or a
noise scribble) is drawn ``zoom`` times larger *and its strokes are filled
with copies of the glyph at its original 28-pixel size*: the pixel value is
``min(big glyph, tiled small glyph)``. The low-resolution view (a pyramid
level about ``base_side / 8`` pixels a side) therefore shows the Megapixel
MNIST layout, where the digits are, and a 50x50 patch at full resolution
shows 28-pixel digits of the class of the big digit it lies in, what they
are: the attention network and the feature network of Megapixel MNIST fit
as they are, at any ``side``. With ``side == base_side`` the images are
exactly Megapixel MNIST's (up to 8-bit rounding).

Every pyramid level is rendered from the description, not downsampled from
the level above, each pixel averaging ``min(2**level, 4)**2`` samples of the
full-resolution image.

On disk, ``directory/`` holds ``gigapixel_mnist.json`` (parameters, pyramid,
files and labels), ``description/`` (the Megapixel MNIST description, see
:meth:`MegapixelMNIST.save`) and ``train/*.tif``, ``test/*.tif``.

Example::

    from ats.datasets.gigapixel_mnist import (GigapixelMNIST,
                                              GigapixelMNISTConfig)

    data = GigapixelMNIST.write("gigapixel", GigapixelMNISTConfig(side=24000))
    train = data.sequence("train", batch_size=4, patch_size=(50, 50))
    (x_low, x_high_ref), y = train[0]       # (4, 188, 188, 1) uint8, (4, 3)

``ats gigapixel make-data`` writes a data set; training on it (the lazy
path, reading only the sampled patches) is the experiment
:mod:`ats.experiments.gigapixel_mnist` (``ats gigapixel train``).
"""

from .config import GigapixelMNISTConfig
from .dataset import GigapixelMNIST
from .rendering import render_window, write_tiff

__all__ = [
    "GigapixelMNISTConfig",
    "GigapixelMNIST",
    "render_window",
    "write_tiff",
]
