"""Synthetic H&E-like whole-slide images, written offline as SVS files.

For the pathology demo (``scripts/pathology_demo.sh``, ``docs/pathology.md``)
and its tests: a folder of slides of 20,000 to 60,000 pixels a side and a
``manifest.csv`` (``path,label,group``) that ``ats fit`` trains on.

Each slide is white glass with one to three pieces of pink/purple tissue
(blobs with a smooth boundary, a stain that drifts between eosin pink and
hematoxylin purple, a fibrous texture and scattered small nuclei). On top:

* *lymphoid aggregates* (every slide, 1 to 3): disks of 120 to 220 microns
  packed with small round dark nuclei;
* *tumour nests* (slides labelled ``"tumour"`` only, 2 to 4): disks of the
  same size packed with large, elongated, darker nuclei.

At a low view of 32 microns per pixel both are dark spots of a few pixels;
only the patches at full resolution tell them apart, so the label is
decided by the tumour nests. Some slides carry a pen mark (a wavy green or
blue stroke), which the tissue mask must exclude. Slides are grouped in
cases (the manifest's ``group``): the slides of a case share its label.

Files are Aperio-style SVS (tifffile): level 0 in 256x256 JPEG tiles with
the ImageDescription ``Aperio Image Library ...|MPP = 0.5`` and resolution
tags in pixels per centimetre, a thumbnail, then reduced levels at 4, 16
and 64 times fewer pixels a side, as OpenSlide and tifffile read SVS files.
Level 0 is never held in memory: its tiles are rendered one at a time
(background tiles share one pre-encoded JPEG), and each is block-averaged
into level 1 as it is written. ``structures.json`` lists, per slide, its
label, case, shape, mpp and the boxes ``[y0, x0, y1, x1]`` (level-0 pixels)
of its tumour nests and lymphoid aggregates. Everything is decided by
``seed``.

Example:
    >>> import tempfile
    >>> from ats.datasets.synthetic_slides import write_demo_slides
    >>> folder = tempfile.mkdtemp()
    >>> manifest = write_demo_slides(folder, n_slides=2,
    ...                              side_range=(2048, 2048))
    >>> print(manifest.read_text().splitlines()[0])
    path,label,group
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
    "MPP",
    "TILE",
    "slide_plan",
    "render_tile",
    "write_slide",
    "write_demo_slides",
]

LABELS = ("normal", "tumour")
"""The slides' classes."""

MPP = 0.5
"""Microns per pixel of level 0 (a "20x" scan)."""

TILE = 256
"""The side of a JPEG tile, in pixels."""

_CELL = 64
"""Level-0 pixels per cell of the coarse fields (tissue, stain, ink)."""

_PERIOD = 1024
"""The side of the periodic texture (fibres and scattered nuclei)."""

_LEVEL_FACTOR = 4
"""The downsample between consecutive pyramid levels."""

_BACKGROUND = (243.0, 243.0, 245.0)
_EOSIN = (234.0, 168.0, 204.0)
_HEMATOXYLIN = (196.0, 146.0, 204.0)
_NUCLEUS = (122.0, 84.0, 164.0)
_LYMPHOCYTE = (84.0, 52.0, 136.0)
_TUMOUR = (72.0, 34.0, 112.0)
_NEST = (206.0, 150.0, 206.0)
_INKS = ((58.0, 150.0, 104.0), (52.0, 88.0, 188.0))


def _smooth_noise(rng, shape, scale):
    """Periodic smooth noise of ``shape``, features about ``scale`` cells
    across, zero mean and unit standard deviation (float32)."""
    noise = rng.standard_normal(shape)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    gain = np.exp(-((fy**2 + fx**2) * (scale**2) * 2.0))
    field = np.real(np.fft.ifft2(np.fft.fft2(noise) * gain))
    std = field.std()
    return (field / (std if std > 0 else 1.0)).astype(np.float32)


def _nuclei(rng, centre, radius, sizes, elongation, fill):
    """Nuclei packed in a disk: ``(N, 5)`` rows ``cy, cx, ry, rx, angle``
    (level-0 pixels), about ``fill`` of the disk's area covered."""
    size = float(np.mean(sizes))
    count = int(fill * radius**2 / (size**2 * np.mean(elongation)))
    r = radius * np.sqrt(rng.random(count))
    theta = rng.uniform(0, 2 * np.pi, count)
    small = rng.uniform(*sizes, count)
    stretch = rng.uniform(*elongation, count)
    return np.stack(
        [
            centre[0] + r * np.sin(theta),
            centre[1] + r * np.cos(theta),
            small * stretch,
            small,
            rng.uniform(0, np.pi, count),
        ],
        axis=1,
    ).astype(np.float32)


def slide_plan(index, label, seed=0, side_range=(20000, 30000)):
    """Everything that decides one slide, drawn from ``(seed, index)``.

    Args:
        index: int, the slide's number.
        label: ``"normal"`` or ``"tumour"``.
        seed: int.
        side_range: ``(low, high)`` the sides' range in pixels (each side
            drawn log-uniformly in it).

    Returns:
        A dict: ``shape`` ``(H, W)``; the coarse fields (one value per
        ``64x64`` level-0 pixels, float32) ``tissue`` (> 0 on tissue),
        ``stain`` (0 eosin to 1 hematoxylin) and ``ink`` (pen opacity);
        ``ink_colour``; ``structures``: a list of dicts with ``kind``
        (``"tumour"`` or ``"lymphoid"``), ``centre``, ``radius`` and
        ``nuclei`` (rows ``cy, cx, ry, rx, angle``); ``label``.

    Example:
        >>> from ats.datasets.synthetic_slides import slide_plan
        >>> plan = slide_plan(0, "tumour", side_range=(4096, 4096))
        >>> plan["shape"], sorted({s["kind"] for s in plan["structures"]})
        ((4096, 4096), ['lymphoid', 'tumour'])
    """
    label = checks.choice("label", label, LABELS, "slide_plan")
    rng = np.random.default_rng([seed, index])
    low, high = side_range
    shape = tuple(
        int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))
        for _ in range(2)
    )
    coarse = tuple(math.ceil(s / _CELL) for s in shape)
    yy, xx = np.meshgrid(
        (np.arange(coarse[0]) + 0.5) / coarse[0],
        (np.arange(coarse[1]) + 0.5) / coarse[1],
        indexing="ij",
    )
    tissue = np.full(coarse, -1.0, np.float32)
    for _ in range(rng.integers(1, 4)):
        ry, rx = rng.uniform(0.15, 0.3, 2)
        cy, cx = rng.uniform(0.3, 0.7, 2)
        angle = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dy * np.cos(angle) + dx * np.sin(angle)) / ry
        v = (-dy * np.sin(angle) + dx * np.cos(angle)) / rx
        tissue = np.maximum(tissue, 1 - np.sqrt(u**2 + v**2))
    edge = max(2.0, min(coarse) / 12)
    tissue = tissue + 0.12 * _smooth_noise(rng, coarse, edge)
    stain = 1 / (1 + np.exp(-1.5 * _smooth_noise(rng, coarse, 3 * edge)))
    ink = np.zeros(coarse, np.float32)
    if rng.random() < 0.4:
        # A wavy stroke 0.4 mm wide across about half of the slide.
        cells = np.stack([yy * coarse[0], xx * coarse[1]], axis=-1)
        start = rng.uniform(0.1, 0.5, 2) * coarse
        direction = np.array([math.sin(a := rng.uniform(0, 2 * np.pi)), math.cos(a)])
        normal = np.array([-direction[1], direction[0]])
        length = 0.5 * min(coarse)
        frequency = rng.uniform(2, 4) * 2 * np.pi / length
        half_width = 200 / MPP / _CELL
        for step in np.linspace(0, length, int(length / 2) + 2):
            point = (
                start
                + step * direction
                + 0.05 * length * math.sin(frequency * step) * normal
            )
            distance = np.linalg.norm(cells - point, axis=-1)
            ink = np.maximum(ink, np.clip(half_width + 0.5 - distance, 0, 1))
        ink = (0.85 * ink).astype(np.float32)
    structures = []
    inside = np.argwhere(tissue > 0.3)
    kinds = ["lymphoid"] * int(rng.integers(1, 4))
    if label == "tumour":
        kinds += ["tumour"] * int(rng.integers(2, 5))
    for kind in kinds:
        if not len(inside):
            break
        cell = inside[rng.integers(len(inside))]
        centre = ((cell + rng.random(2)) * _CELL).astype(float)
        radius = rng.uniform(120, 220) / MPP / 2  # 120 to 220 microns across
        if kind == "tumour":
            nuclei = _nuclei(rng, centre, radius, (8, 11), (1.1, 1.7), 0.6)
        else:
            nuclei = _nuclei(rng, centre, radius, (4.5, 5.5), (1.0, 1.1), 0.6)
        structures.append(
            {"kind": kind, "centre": centre, "radius": radius, "nuclei": nuclei}
        )
    return {
        "label": label,
        "shape": shape,
        "tissue": tissue.astype(np.float32),
        "stain": stain.astype(np.float32),
        "ink": ink,
        "ink_colour": _INKS[int(rng.integers(len(_INKS)))],
        "structures": structures,
    }


def _texture(seed):
    """The periodic texture: ``(fibres, nuclei)``, ``_PERIOD`` a side,
    float32 (fibres about in [-1, 1]; nuclei opacity in [0, 1])."""
    rng = np.random.default_rng([seed, 2**20])
    fibres = 0.6 * _smooth_noise(rng, (_PERIOD, _PERIOD), 1.5)
    fibres += 0.4 * _smooth_noise(rng, (_PERIOD, _PERIOD), 6)
    nuclei = np.zeros((_PERIOD, _PERIOD), np.float32)
    count = _PERIOD**2 // 1800
    rows = np.stack(
        [
            rng.uniform(0, _PERIOD, count),
            rng.uniform(0, _PERIOD, count),
            rng.uniform(3, 6, count),
            rng.uniform(2.5, 3.5, count),
            rng.uniform(0, np.pi, count),
        ],
        axis=1,
    )
    padded = np.zeros((_PERIOD + 32, _PERIOD + 32), np.float32)
    _stamp(padded, rows + [16, 16, 0, 0, 0], 1.0)
    padded[:, :32] += padded[:, _PERIOD : _PERIOD + 32]
    padded[:32] += padded[_PERIOD : _PERIOD + 32]
    padded[:, _PERIOD : _PERIOD + 32] = 0
    nuclei = np.clip(np.roll(padded[:_PERIOD, :_PERIOD], (-16, -16), (0, 1)), 0, 1)
    return np.clip(fibres, -2, 2), nuclei


def _stamp(alpha, nuclei, opacity, origin=(0, 0)):
    """Draw anti-aliased elliptical nuclei into ``alpha`` (in place, the
    maximum of the opacities); ``origin`` is ``alpha[0, 0]``'s position."""
    h, w = alpha.shape
    for cy, cx, ry, rx, angle in nuclei:
        y, x = cy - origin[0], cx - origin[1]
        r = int(math.ceil(max(ry, rx))) + 1
        y0, y1 = max(int(y) - r, 0), min(int(y) + r + 1, h)
        x0, x1 = max(int(x) - r, 0), min(int(x) + r + 1, w)
        if y0 >= y1 or x0 >= x1:
            continue
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - y
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - x
        c, s = math.cos(angle), math.sin(angle)
        u = (dy * c + dx * s) / ry
        v = (-dy * s + dx * c) / rx
        distance = (np.sqrt(u**2 + v**2) - 1) * min(ry, rx)
        value = np.clip(0.5 - distance, 0, 1) * opacity
        np.maximum(alpha[y0:y1, x0:x1], value, out=alpha[y0:y1, x0:x1])


def _upsampler():
    """``A`` with ``A @ coarse[i - 1 : i + k + 1] == bilinear values`` on
    the ``TILE`` pixels of coarse cells ``i .. i + k - 1`` (``k = TILE /
    _CELL``)."""
    k = TILE // _CELL
    position = (np.arange(TILE) + 0.5) / _CELL - 0.5 + 1  # in padded cells
    below = np.floor(position).astype(int)
    weight = position - below
    matrix = np.zeros((TILE, k + 2), np.float32)
    matrix[np.arange(TILE), below] = 1 - weight
    matrix[np.arange(TILE), below + 1] = weight
    return matrix


class _Renderer:
    """Renders the level-0 tiles of one slide plan."""

    def __init__(self, plan, seed):
        self.plan = plan
        fibres, nuclei = _texture(seed)
        fibres, nuclei = 1 + 0.06 * fibres[..., None], 0.8 * nuclei[..., None]
        # The textured stains, periodic: eosin and hematoxylin with their
        # fibres and scattered nuclei (a tile mixes them by its stain field).
        self.textures = [
            fibres * np.float32(stain) * (1 - nuclei) + nuclei * np.float32(_NUCLEUS)
            for stain in (_EOSIN, _HEMATOXYLIN)
        ]
        self.textures[1] -= self.textures[0]
        self.upsample = _upsampler()
        pad = ((1, TILE // _CELL + 1), (1, TILE // _CELL + 1))
        self.fields = {
            name: np.pad(plan[name], pad, mode="edge")
            for name in ("tissue", "stain", "ink")
        }

    def field(self, name, ty, tx):
        k = TILE // _CELL
        block = self.fields[name][ty * k : ty * k + k + 2, tx * k : tx * k + k + 2]
        return self.upsample @ block @ self.upsample.T

    def is_background(self, ty, tx):
        k = TILE // _CELL
        sl = (slice(ty * k, ty * k + k + 2), slice(tx * k, tx * k + k + 2))
        return (
            self.fields["tissue"][sl].max() < -0.05
            and self.fields["ink"][sl].max() <= 0
        )

    def tile(self, ty, tx):
        """The ``(TILE, TILE, 3)`` uint8 RGB tile at tile row ``ty``,
        column ``tx``."""
        y0, x0 = ty * TILE, tx * TILE
        oy, ox = y0 % _PERIOD, x0 % _PERIOD
        eosin, difference = (t[oy : oy + TILE, ox : ox + TILE] for t in self.textures)
        stain = np.clip(self.field("stain", ty, tx), 0, 1)[..., None]
        rgb = eosin + stain * difference
        for structure in self.plan["structures"]:
            rgb = self._structure(rgb, structure, y0, x0)
        tissue = self.field("tissue", ty, tx)
        if tissue.min() < 1 / 40:
            tissue = np.clip(tissue * 40 + 0.5, 0, 1)[..., None]
            rgb = np.float32(_BACKGROUND) + tissue * (rgb - np.float32(_BACKGROUND))
        ink = self.field("ink", ty, tx)
        if ink.max() > 0:
            ink_colour = np.float32(self.plan["ink_colour"]) / 255
            rgb = rgb * (1 - np.clip(ink, 0, 1)[..., None] * (1 - ink_colour))
        rgb += 0.5
        return np.clip(rgb, 0, 255, out=rgb).astype(np.uint8)

    def _structure(self, colour, structure, y0, x0):
        cy, cx = structure["centre"]
        radius = structure["radius"]
        margin = radius + 16
        if not (
            y0 - margin < cy < y0 + TILE + margin
            and x0 - margin < cx < x0 + TILE + margin
        ):
            return colour
        dy = np.arange(TILE, dtype=np.float32)[:, None] + y0 + 0.5 - cy
        dx = np.arange(TILE, dtype=np.float32)[None, :] + x0 + 0.5 - cx
        nest = np.clip((radius + 8 - np.sqrt(dy**2 + dx**2)) / 16, 0, 1)[..., None]
        colour = colour + 0.7 * nest * (np.float32(_NEST) - colour)
        alpha = np.zeros((TILE, TILE), np.float32)
        nuclei = structure["nuclei"]
        near = (
            (nuclei[:, 0] > y0 - 16)
            & (nuclei[:, 0] < y0 + TILE + 16)
            & (nuclei[:, 1] > x0 - 16)
            & (nuclei[:, 1] < x0 + TILE + 16)
        )
        _stamp(alpha, nuclei[near], 0.95, (y0, x0))
        target = _TUMOUR if structure["kind"] == "tumour" else _LYMPHOCYTE
        return colour + alpha[..., None] * (np.float32(target) - colour)


def render_tile(plan, ty, tx, seed=0):
    """One level-0 tile of a slide plan (for tests and pictures).

    Args:
        plan: a :func:`slide_plan`.
        ty, tx: ints, the tile's row and column (``TILE`` pixels each).
        seed: int, the seed of the texture.

    Returns:
        ``(TILE, TILE, 3)`` uint8 RGB.
    """
    return _Renderer(plan, seed).tile(ty, tx)


def _block_mean(image, factor, fill):
    """``image`` ``(H, W, 3)`` uint8 averaged over ``factor x factor``
    blocks (padded with ``fill``), uint8."""
    h, w, _ = image.shape
    ph, pw = -h % factor, -w % factor
    if ph or pw:
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
        image[h:] = fill
        image[:, w:] = fill
    rows = sum(image[i::factor].astype(np.uint16) for i in range(factor))
    total = sum(rows[:, i::factor] for i in range(factor))
    return ((total + factor**2 // 2) // factor**2).astype(np.uint8)


def _description(shape, level_shape=None, quality=80):
    h, w = shape
    head = f"Aperio Image Library v12.0.15 \r\n{w}x{h} "
    if level_shape is None:
        return (
            f"{head}[0,0 {w}x{h}] ({TILE}x{TILE}) JPEG/RGB Q={quality}"
            f"|AppMag = 20|MPP = {MPP}|ats synthetic slide"
        )
    return f"{head}-> {level_shape[1]}x{level_shape[0]} - |ats synthetic slide"


def write_slide(path, plan, seed=0, quality=80):
    """Write a slide plan as an SVS file (atomically: a temporary file
    renamed into place).

    Args:
        path: the ``.svs`` file to write.
        plan: a :func:`slide_plan`.
        seed: int, the seed of the texture.
        quality: int in [1, 100], the JPEG quality.

    Returns:
        ``pathlib.Path`` of the file.
    """
    import imagecodecs
    import tifffile

    path = Path(path)
    renderer = _Renderer(plan, seed)
    h, w = plan["shape"]
    rows, columns = math.ceil(h / TILE), math.ceil(w / TILE)
    background = np.full((TILE, TILE, 3), np.float32(_BACKGROUND) + 0.5, np.uint8)
    jpeg = {
        "level": quality,
        "colorspace": "RGB",
        "outcolorspace": "YCBCR",
        "subsampling": (2, 2),
    }
    blank = imagecodecs.jpeg_encode(background, **jpeg)
    small = TILE // _LEVEL_FACTOR
    reduced = np.empty((rows * small, columns * small, 3), np.uint8)
    reduced[:] = background[0, 0]  # level 1, filled tile by tile

    def tiles():
        for ty in range(rows):
            for tx in range(columns):
                if renderer.is_background(ty, tx):
                    yield blank
                    continue
                tile = renderer.tile(ty, tx)
                reduced[
                    ty * small : (ty + 1) * small, tx * small : (tx + 1) * small
                ] = _block_mean(tile, _LEVEL_FACTOR, background[0, 0])
                yield imagecodecs.jpeg_encode(tile, **jpeg)

    common = {
        "photometric": "rgb",
        "metadata": None,
        "resolution": (1e4 / MPP, 1e4 / MPP),
        "resolutionunit": "CENTIMETER",
    }
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tifffile.TiffWriter(tmp, bigtiff=h * w * 3 > 2**32) as tif:
            tif.write(
                tiles(),
                shape=(h, w, 3),
                dtype=np.uint8,
                tile=(TILE, TILE),
                compression="jpeg",
                subsampling=(2, 2),
                description=_description((h, w), quality=quality),
                **common,
            )
            levels = [
                reduced[: math.ceil(h / _LEVEL_FACTOR), : math.ceil(w / _LEVEL_FACTOR)]
            ]
            while min(levels[-1].shape[:2]) // _LEVEL_FACTOR >= TILE // 2:
                levels.append(_block_mean(levels[-1], _LEVEL_FACTOR, background[0, 0]))
            thumbnail = levels[-1]
            tif.write(
                thumbnail,
                compression="jpeg",
                compressionargs={"level": quality},
                description=_description((h, w), thumbnail.shape[:2]),
                **common,
            )
            for level in levels:
                tif.write(
                    level,
                    tile=(TILE, TILE),
                    compression="jpeg",
                    compressionargs={"level": quality},
                    description=_description((h, w), level.shape[:2]),
                    **common,
                )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _cases(n_slides, rng):
    """``[(case, label), ...]`` per slide: cases of 1 or 2 slides, labels
    balanced over the cases."""
    sizes = []
    while sum(sizes) < n_slides:
        sizes.append(int(min(rng.integers(1, 3), n_slides - sum(sizes))))
    labels = [LABELS[i % 2] for i in range(len(sizes))]
    rng.shuffle(labels)
    return [
        (f"case{number + 1:02d}", labels[number])
        for number, size in enumerate(sizes)
        for _ in range(size)
    ]


def _box(structure):
    cy, cx = structure["centre"]
    r = structure["radius"]
    return [int(cy - r), int(cx - r), int(math.ceil(cy + r)), int(math.ceil(cx + r))]


def write_demo_slides(
    directory, n_slides=12, side_range=(20000, 30000), seed=0, quality=80
):
    """Write the demo slides, ``manifest.csv`` and ``structures.json``.

    Slides go to ``directory/slides/<case>_<letter>.svs``; the manifest
    lists them relative to ``directory`` with their label (``"normal"`` or
    ``"tumour"``) and case (``group``). Existing files of the same names
    are replaced.

    Args:
        directory: the folder to write (created if needed).
        n_slides: int >= 2, the number of slides.
        side_range: ``(low, high)`` pixels, each side drawn log-uniformly
            in it, ``2048 <= low <= high <= 200000``.
        seed: int, decides everything written.
        quality: int in [1, 100], the JPEG quality.

    Returns:
        ``pathlib.Path`` of ``directory/manifest.csv``.

    Raises:
        ValueError: an argument out of range.
    """
    where = "write_demo_slides"
    n_slides = checks.integer("n_slides", n_slides, minimum=2, where=where)
    side_range = checks.int_tuple("side_range", side_range, length=2, where=where)
    if not 2048 <= side_range[0] <= side_range[1] <= 200000:
        checks.fail(
            "side_range",
            "(low, high) with 2048 <= low <= high <= 200000",
            side_range,
            where,
        )
    seed = checks.integer("seed", seed, where=where)
    quality = checks.integer("quality", quality, minimum=1, maximum=100, where=where)
    directory = Path(directory)
    (directory / "slides").mkdir(parents=True, exist_ok=True)
    rows, structures = [], {}
    letters = {}
    for index, (case, label) in enumerate(
        _cases(n_slides, np.random.default_rng([seed, 2**21]))
    ):
        letter = "abcdefghij"[letters.setdefault(case, 0)]
        letters[case] += 1
        relative = f"slides/{case}_{letter}.svs"
        plan = slide_plan(index, label, seed, side_range)
        write_slide(directory / relative, plan, seed, quality)
        rows.append((relative, label, case))
        structures[relative] = {
            "label": label,
            "group": case,
            "shape": list(plan["shape"]),
            "mpp": MPP,
            "pen_mark": bool(plan["ink"].max() > 0),
            "tumour_boxes": [
                _box(s) for s in plan["structures"] if s["kind"] == "tumour"
            ],
            "lymphoid_boxes": [
                _box(s) for s in plan["structures"] if s["kind"] == "lymphoid"
            ],
        }
    _write_text(directory / "structures.json", json.dumps(structures, indent=1) + "\n")
    manifest = directory / "manifest.csv"
    with open(manifest.with_name(".manifest.csv.tmp"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("path", "label", "group"))
        writer.writerows(rows)
    os.replace(manifest.with_name(".manifest.csv.tmp"), manifest)
    return manifest


def _write_text(path, text):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
