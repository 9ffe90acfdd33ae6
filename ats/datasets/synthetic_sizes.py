"""A small synthetic data set of images of mixed sizes, shapes and formats.

For tests and for the walk-through of ``docs/your_data.md``: a folder of
files and a ``manifest.csv`` (columns ``path,label``) that ``ats fit`` reads
like any user's data set.

Each image is a gray textured background (smooth shading, grain) with
larger *distractor* shapes (ellipses, rectangles, thick lines) that a
low-resolution view shows, and 1 to 3 small *marks*: dark disks
``object_size`` pixels across with a gray cross inside, upright (``+``,
label ``"upright"``) or diagonal (``x``, label ``"diagonal"``). Every mark
of an image has the image's label, so the label is decided by the marks
only. Both crosses have the same area and the same distance to the centre
of the disk, so a view downscaled ten times shows the same dark dot for
both (tests check it); only the full resolution tells them apart. Marks are
darker than anything else, so an attention network can learn where they
are from the low view, and a patch of about ``2 * object_size`` pixels
around one shows its class.

Images have a long side drawn log-uniformly in ``[min_side, max_side]``, an
aspect ratio from :data:`ASPECT_RATIOS` (landscape or portrait) and are
written in turn as PNG, JPEG and pyramidal tiled TIFF (tifffile; each TIFF
level half the size of the one above down to the ``tile`` size, so every
TIFF has at least one reduced level). Labels are balanced (equal counts, up
to one). Everything is decided by ``seed``: the same arguments write the
same files. ``objects.json`` lists, per image path, the boxes ``[y0, x0, y1,
x1]`` (full-resolution pixels) of its marks.

Example:
    >>> import tempfile
    >>> from ats.datasets.synthetic_sizes import write_synthetic
    >>> folder = tempfile.mkdtemp()
    >>> manifest = write_synthetic(folder, n_images=3, max_side=600)
    >>> print(manifest.read_text().splitlines()[0])
    path,label
    >>> len(manifest.read_text().splitlines())
    4
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np

from .. import checks

__all__ = [
    "LABELS",
    "FORMATS",
    "ASPECT_RATIOS",
    "mark",
    "image_plan",
    "render_image",
    "write_synthetic",
]

LABELS = ("diagonal", "upright")
"""The two labels, sorted: class 0 marks a diagonal cross, class 1 upright."""

FORMATS = ("png", "jpeg", "tiff")
"""The file formats written, in turn."""

ASPECT_RATIOS = (1.0, 4 / 3, 3 / 2, 2.0, 3.0)
"""Long side / short side of the images (each landscape or portrait)."""

_SUFFIX = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif"}
_MARK_VALUE = 0.08  # the dark disk
_MARK_CROSS = 0.42  # the gray cross inside it


def mark(label, size=22, supersample=8):
    """The coverage mask of one mark: how much of each pixel is dark.

    A disk ``size`` pixels across with a gray cross (arms ``0.64 * size``
    long, ``size / 7`` thick) cut out of it, upright for label 1, turned by
    45 degrees for label 0; anti-aliased by ``supersample`` x
    ``supersample`` samples per pixel.

    Args:
        label: 0 (diagonal cross) or 1 (upright cross).
        size: int >= 8, the side of the mask in pixels.
        supersample: int >= 1, samples per pixel and axis.

    Returns:
        ``(disk, cross)``: float32 arrays ``(size, size)`` in [0, 1], the
        coverage of the disk and of the cross (inside the disk).

    Example:
        >>> from ats.datasets.synthetic_sizes import mark
        >>> disk, cross = mark(1, size=22)
        >>> same_ink = abs(mark(0)[1].sum() - cross.sum()) < 0.02 * disk.sum()
        >>> disk.shape, bool(same_ink)
        ((22, 22), True)
    """
    checks.choice("label", label, (0, 1))
    size = checks.integer("size", size, minimum=8)
    supersample = checks.integer("supersample", supersample, minimum=1)
    n = size * supersample
    c = (np.arange(n) + 0.5) / supersample - size / 2
    v, u = np.meshgrid(c, c, indexing="ij")
    disk = u**2 + v**2 <= (size / 2 - 0.5) ** 2
    if label == 0:
        u, v = (u + v) / math.sqrt(2), (u - v) / math.sqrt(2)
    arm, thickness = 0.64 * size, size / 7
    cross = (np.abs(u) <= thickness / 2) & (np.abs(v) <= arm / 2)
    cross |= (np.abs(v) <= thickness / 2) & (np.abs(u) <= arm / 2)
    shape = (size, supersample, size, supersample)
    disk_cover = disk.reshape(shape).mean(axis=(1, 3))
    cross_cover = (disk & cross).reshape(shape).mean(axis=(1, 3))
    return disk_cover.astype(np.float32), cross_cover.astype(np.float32)


def _stamp(image, top, left, label, size):
    """Draw a mark on ``image`` (float32 (H, W)) at ``(top, left)``."""
    disk, cross = mark(label, size)
    window = image[top : top + size, left : left + size]
    shaded = window * (1 - disk) + _MARK_VALUE * disk
    window[...] = shaded * (1 - cross) + _MARK_CROSS * cross


def image_plan(n_images, seed=0, min_side=400, max_side=4000, n_objects=(1, 3)):
    """Size, aspect, format, label and number of marks of every image.

    Args:
        n_images: int >= 1.
        seed: int, the seed of the whole data set.
        min_side, max_side: ints, the range of the long side; the short
            side is at least ``min_side`` too.
        n_objects: ``(low, high)``, the number of marks per image, drawn
            uniformly in ``[low, high]``.

    Returns:
        A list of dicts with keys ``shape`` ``(H, W)``, ``format``,
        ``label`` (0 or 1) and ``n_objects``.

    Example:
        >>> from ats.datasets.synthetic_sizes import image_plan
        >>> [p["format"] for p in image_plan(4)]
        ['png', 'jpeg', 'tiff', 'png']
    """
    n_images = checks.integer("n_images", n_images, minimum=1)
    seed = checks.seed("seed", seed)
    min_side = checks.integer("min_side", min_side, minimum=64)
    max_side = checks.integer("max_side", max_side, minimum=min_side)
    low, high = checks.int_tuple("n_objects", n_objects, length=2, minimum=1)
    if high < low:
        checks.fail("n_objects", "(low, high) with low <= high", n_objects)
    rng = np.random.default_rng([seed, 0])
    labels = rng.permutation(np.arange(n_images) % 2)
    plan = []
    for i in range(n_images):
        long = math.exp(rng.uniform(math.log(min_side), math.log(max_side)))
        ratio = ASPECT_RATIOS[rng.integers(len(ASPECT_RATIOS))]
        long = round(long)
        short = max(min_side, min(long, round(long / ratio)))
        shape = (short, long) if rng.random() < 0.5 else (long, short)
        plan.append(
            {
                "shape": shape,
                "format": FORMATS[i % len(FORMATS)],
                "label": int(labels[i]),
                "n_objects": int(rng.integers(low, high + 1)),
            }
        )
    return plan


def _shading(rng, shape):
    """Smooth shading: random values on grids of 256 and 32 pixels, summed
    on the fine grid and bilinearly upsampled once."""
    from PIL import Image

    h, w = shape
    fine = (h // 32 + 2, w // 32 + 2)
    coarse = rng.uniform(-1, 1, (h // 256 + 2, w // 256 + 2)).astype(np.float32)
    coarse = Image.fromarray(coarse, mode="F").resize(
        (coarse.shape[1] * 8, coarse.shape[0] * 8), Image.BILINEAR
    )
    grid = 0.08 * np.asarray(coarse)[: fine[0], : fine[1]]
    grid = grid + 0.03 * rng.uniform(-1, 1, fine).astype(np.float32)
    big = Image.fromarray(grid, mode="F").resize(
        (fine[1] * 32, fine[0] * 32), Image.BILINEAR
    )
    return np.asarray(big)[:h, :w]


def _distractors(rng, image):
    """Draw larger shapes in mid grays: ellipses, rectangles, thick lines."""
    from PIL import Image, ImageDraw

    h, w = image.shape
    count = int(rng.integers(4, 9) + h * w / 1.5e6)
    for _ in range(count):
        kind = rng.integers(3)
        sy, sx = (int(s) for s in rng.integers(40, max(41, min(h, w) // 3), 2))
        top = int(rng.integers(0, max(1, h - sy)))
        left = int(rng.integers(0, max(1, w - sx)))
        layer = Image.new("L", (sx, sy), 0)
        draw = ImageDraw.Draw(layer)
        if kind == 0:
            draw.ellipse((0, 0, sx - 1, sy - 1), fill=255)
        elif kind == 1:
            draw.rectangle((0, 0, sx - 1, sy - 1), fill=255)
        else:
            width = int(rng.integers(8, 16))
            ends = (
                (0, 0, sx - 1, sy - 1) if rng.random() < 0.5 else (0, sy - 1, sx - 1, 0)
            )
            draw.line(ends, fill=255, width=width)
        alpha = np.asarray(layer, np.float32) / 255 * rng.uniform(0.5, 1.0)
        value = rng.uniform(0.3, 0.85)
        window = image[top : top + sy, left : left + sx]
        alpha = alpha[: window.shape[0], : window.shape[1]]
        window[...] = window * (1 - alpha) + value * alpha


def render_image(plan, seed, index, object_size=22):
    """The pixels of one planned image and the boxes of its marks.

    Args:
        plan: one entry of :func:`image_plan`.
        seed: int, the data set's seed.
        index: int, the image's index (with ``seed``, seeds its content).
        object_size: int, the side of a mark in pixels.

    Returns:
        ``(image, boxes)``: uint8 ``(H, W)`` and a list of ``[y0, x0, y1,
        x1]`` of the marks.

    Example:
        >>> from ats.datasets.synthetic_sizes import image_plan, render_image
        >>> plan = image_plan(1, max_side=500)[0]
        >>> image, boxes = render_image(plan, 0, 0)
        >>> image.shape == plan["shape"], image.dtype.name
        (True, 'uint8')
    """
    rng = np.random.default_rng([checks.seed("seed", seed), 1, index])
    h, w = plan["shape"]
    image = _shading(rng, (h, w)) + np.float32(0.55)
    _distractors(rng, image)
    grain = rng.uniform(-0.03, 0.03, (128, 128)).astype(np.float32)
    image += np.tile(grain, (h // 128 + 1, w // 128 + 1))[:h, :w]
    boxes = []
    margin = object_size
    for _ in range(plan["n_objects"]):
        for _attempt in range(100):
            top = int(rng.integers(margin, h - 2 * margin))
            left = int(rng.integers(margin, w - 2 * margin))
            box = [top, left, top + object_size, left + object_size]
            if all(
                box[0] >= b[2] + margin
                or b[0] >= box[2] + margin
                or box[1] >= b[3] + margin
                or b[1] >= box[3] + margin
                for b in boxes
            ):
                break
        _stamp(image, top, left, plan["label"], object_size)
        boxes.append(box)
    image = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    return image, boxes


def _levels(image, tile):
    """The image and its halvings (2x2 means) down to ``tile`` pixels."""
    levels = [image]
    while max(levels[-1].shape) > tile or len(levels) < 2:
        a = levels[-1].astype(np.float32)
        h, w = a.shape
        a = np.pad(a, ((0, h % 2), (0, w % 2)), mode="edge")
        a = a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).mean(axis=(1, 3))
        levels.append(np.rint(a).astype(np.uint8))
    return levels


def _write(path, image, fmt, tile, quality):
    from PIL import Image

    tmp = path.with_name(path.name + ".tmp")
    if fmt == "png":
        Image.fromarray(image).save(tmp, format="PNG", compress_level=1)
    elif fmt == "jpeg":
        Image.fromarray(image).save(tmp, format="JPEG", quality=quality)
    else:
        import tifffile

        with tifffile.TiffWriter(tmp) as writer:
            for level, pixels in enumerate(_levels(image, tile)):
                writer.write(
                    pixels,
                    tile=(tile, tile),
                    photometric="minisblack",
                    compression="zlib",
                    compressionargs={"level": 1},
                    subfiletype=1 if level else 0,
                )
    os.replace(tmp, path)


def write_synthetic(
    directory,
    n_images=120,
    seed=0,
    min_side=400,
    max_side=4000,
    n_objects=(1, 3),
    object_size=22,
    tile=256,
    jpeg_quality=92,
):
    """Write the synthetic data set and its ``manifest.csv``.

    Files go to ``directory/images/NNNN.{png,jpg,tif}``; the manifest lists
    them relative to ``directory`` with their labels (``"diagonal"`` or
    ``"upright"``), and ``objects.json`` the boxes of their marks. Existing
    files of the same names are replaced.

    Args:
        directory: the folder to write (created if needed).
        n_images: int >= 1, the number of images.
        seed: int, decides everything written.
        min_side, max_side: ints, the range of the sides in pixels.
        n_objects: ``(low, high)`` marks per image.
        object_size: int >= 8, the side of a mark in pixels.
        tile: int, multiple of 16, the TIFF tile side.
        jpeg_quality: int in [1, 100].

    Returns:
        ``pathlib.Path`` of ``directory/manifest.csv``.

    Raises:
        ValueError: an argument is out of range (e.g. ``min_side`` too
            small for ``object_size``).
    """
    object_size = checks.integer("object_size", object_size, minimum=8)
    min_side = checks.integer("min_side", min_side, minimum=64)
    if min_side < 6 * object_size:
        checks.fail(
            "min_side", f"an int >= 6 * object_size = {6 * object_size}", min_side
        )
    tile = checks.integer("tile", tile, minimum=16)
    if tile % 16:
        checks.fail("tile", "a multiple of 16", tile)
    jpeg_quality = checks.integer("jpeg_quality", jpeg_quality, minimum=1, maximum=100)
    plan = image_plan(n_images, seed, min_side, max_side, n_objects)
    directory = Path(directory)
    (directory / "images").mkdir(parents=True, exist_ok=True)
    rows, objects = [], {}
    for i, entry in enumerate(plan):
        image, boxes = render_image(entry, seed, i, object_size)
        relative = f"images/{i:04d}{_SUFFIX[entry['format']]}"
        _write(directory / relative, image, entry["format"], tile, jpeg_quality)
        rows.append((relative, LABELS[entry["label"]]))
        objects[relative] = boxes
    manifest = directory / "manifest.csv"
    tmp = manifest.with_name("manifest.csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("path", "label"))
        writer.writerows(rows)
    os.replace(tmp, manifest)
    (directory / "objects.json").write_text(json.dumps(objects, indent=1) + "\n")
    return manifest
