"""Physical resolution: microns per pixel (mpp) from a slide's metadata.

Pure functions (no file access): ``slide_mpp`` reads the mpp of a slide's
level 0 from what its file says (OpenSlide properties, an Aperio
``ImageDescription``, OME-XML, TIFF resolution tags), ``level_mpps`` gives
every pyramid level's mpp from the level shapes, and ``choose_level`` picks
the level to read a requested mpp from and the factor to resize it by.
mpps are ``(y, x)`` pairs of floats: microns per pixel down the rows and
along the columns.
"""

import math
import re
import xml.etree.ElementTree as ElementTree

from .. import checks

__all__ = [
    "MAX_TAG_MPP",
    "LEVEL_TOLERANCE",
    "aperio_mpp",
    "ome_mpp",
    "property_mpp",
    "resolution_tag_mpp",
    "slide_mpp",
    "level_mpps",
    "choose_level",
    "resized_shape",
    "checked_mpps",
]

MAX_TAG_MPP = 50.0
"""TIFF resolution tags meaning more microns per pixel than this (fewer than
508 dots per inch) are not taken for a slide's resolution: 72, 96, 150 and
300 dpi are what image software writes by default, not what a microscope or
slide scanner measured."""

LEVEL_TOLERANCE = 0.1
"""How much coarser than the requested mpp a slide's level 0 may be and
still be read (and enlarged to it): scanners' "40x" ranges from about 0.22
to 0.27 microns per pixel, so 0.25 is served by a 0.263 level 0 rather than
refused."""

_MICRONS_PER_UNIT = {2: 25400.0, 3: 10000.0, "INCH": 25400.0, "CENTIMETER": 10000.0}
"""TIFF ``ResolutionUnit`` (2: inch, 3: centimeter) in microns; 1 (none)
carries no physical size."""

_OME_UNITS = {
    "µm": 1.0,
    "um": 1.0,
    "\u03bcm": 1.0,
    "nm": 1e-3,
    "mm": 1e3,
    "cm": 1e4,
    "m": 1e6,
}


def _positive(value):
    """``value`` as a finite float > 0, or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _pair(y, x):
    y, x = _positive(y), _positive(x)
    if y is None and x is None:
        return None
    return (y or x, x or y)


def property_mpp(properties):
    """The mpp in OpenSlide-style properties (``openslide.mpp-x/y``,
    ``tiffslide.mpp-x/y``, ``aperio.MPP``), or None.

    Args:
        properties: mapping of property names to values (strings or numbers).

    Returns:
        ``(mpp_y, mpp_x)`` floats, or None.

    Example:
        >>> from ats.data.resolution import property_mpp
        >>> property_mpp({"openslide.mpp-x": "0.2527", "openslide.mpp-y": "0.2527"})
        (0.2527, 0.2527)
    """
    properties = dict(properties or {})
    for prefix in ("openslide", "tiffslide"):
        found = _pair(
            properties.get(f"{prefix}.mpp-y"), properties.get(f"{prefix}.mpp-x")
        )
        if found:
            return found
    return _pair(properties.get("aperio.MPP"), properties.get("aperio.MPP"))


def aperio_mpp(description):
    """The mpp of an Aperio (SVS) ``ImageDescription`` (``|MPP = 0.2520|``),
    or None.

    Args:
        description: str, the TIFF ImageDescription of level 0.

    Returns:
        ``(mpp, mpp)`` floats, or None.

    Example:
        >>> from ats.data.resolution import aperio_mpp
        >>> aperio_mpp("Aperio Image Library v12 \\r\\n|AppMag = 40|MPP = 0.2520")
        (0.252, 0.252)
    """
    if not isinstance(description, str) or not description.startswith("Aperio"):
        return None
    match = re.search(r"\|\s*MPP\s*=\s*([0-9.eE+-]+)", description)
    return _pair(match.group(1), match.group(1)) if match else None


def ome_mpp(ome_xml):
    """The mpp of the first image of an OME-XML document (``Pixels``'
    ``PhysicalSizeY/X`` in their units, microns by default), or None.

    Args:
        ome_xml: str, the OME-XML (e.g. ``tifffile.TiffFile.ome_metadata``).

    Returns:
        ``(mpp_y, mpp_x)`` floats, or None (no document, no physical size,
        or a unit that is not a length).

    Example:
        >>> from ats.data.resolution import ome_mpp
        >>> ome_mpp('<OME><Image><Pixels PhysicalSizeX="0.5" PhysicalSizeY="0.5" '
        ...         'PhysicalSizeXUnit="µm"/></Image></OME>')
        (0.5, 0.5)
    """
    if not isinstance(ome_xml, str) or not ome_xml.strip():
        return None
    try:
        root = ElementTree.fromstring(ome_xml)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Pixels":
            continue
        sizes = []
        for axis in ("Y", "X"):
            size = _positive(element.get(f"PhysicalSize{axis}"))
            unit = _OME_UNITS.get(element.get(f"PhysicalSize{axis}Unit", "µm"))
            sizes.append(None if size is None or unit is None else size * unit)
        return _pair(*sizes)
    return None


def _tag_value(value):
    """A TIFF RATIONAL (``(numerator, denominator)``) or number as a float."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or not value[1]:
            return None
        return _positive(value[0] / value[1])
    return _positive(value)


def resolution_tag_mpp(x_resolution, y_resolution, unit):
    """The mpp of TIFF resolution tags, or None.

    Args:
        x_resolution, y_resolution: pixels per ``unit`` (numbers or
            ``(numerator, denominator)`` rationals).
        unit: the ``ResolutionUnit``: 2 or ``"INCH"``, 3 or
            ``"CENTIMETER"`` (1, none, carries no physical size).

    Returns:
        ``(mpp_y, mpp_x)`` floats, or None (no unit, or coarser than
        :data:`MAX_TAG_MPP`: a software default such as 72 dpi).

    Example:
        >>> from ats.data.resolution import resolution_tag_mpp
        >>> resolution_tag_mpp((40000, 1), (40000, 1), 3)    # per centimeter
        (0.25, 0.25)
        >>> resolution_tag_mpp(72, 72, 2) is None            # 72 dpi: a default
        True
    """
    key = getattr(unit, "name", unit)
    if key not in _MICRONS_PER_UNIT:
        return None
    microns = _MICRONS_PER_UNIT[key]
    per_unit = (_tag_value(y_resolution), _tag_value(x_resolution))
    if None in per_unit:
        return None
    mpp = tuple(microns / p for p in per_unit)
    return mpp if max(mpp) <= MAX_TAG_MPP else None


def slide_mpp(properties=None, description=None, ome_xml=None, resolution=None):
    """The mpp of a slide's level 0 from its metadata, the first found of:
    OpenSlide properties, an Aperio description, OME-XML, TIFF resolution
    tags.

    Args:
        properties: optional mapping, OpenSlide-style properties.
        description: optional str, level 0's TIFF ImageDescription.
        ome_xml: optional str, the OME-XML of an OME-TIFF.
        resolution: optional ``(x_resolution, y_resolution, unit)``, level
            0's TIFF tags (:func:`resolution_tag_mpp`).

    Returns:
        ``(mpp_y, mpp_x)`` floats, or None when nothing says.

    Example:
        >>> from ats.data.resolution import slide_mpp
        >>> slide_mpp(description="Aperio Image Library|MPP = 0.5",
        ...           resolution=((1, 1), (1, 1), 1))
        (0.5, 0.5)
        >>> slide_mpp(resolution=((20000, 1), (20000, 1), 3))
        (0.5, 0.5)
    """
    return (
        property_mpp(properties)
        or aperio_mpp(description)
        or ome_mpp(ome_xml)
        or (resolution_tag_mpp(*resolution) if resolution is not None else None)
    )


def level_mpps(mpp, level_shapes):
    """Every pyramid level's mpp from level 0's and the levels' shapes.

    Args:
        mpp: ``(mpp_y, mpp_x)`` of level 0.
        level_shapes: list of ``(h, w)``, finest (level 0) first.

    Returns:
        list of ``(mpp_y, mpp_x)``, one per level.

    Example:
        >>> from ats.data.resolution import level_mpps
        >>> level_mpps((0.25, 0.25), [(4000, 6000), (1000, 1500)])
        [(0.25, 0.25), (1.0, 1.0)]
    """
    base = level_shapes[0]
    return [
        tuple(m * b / s for m, b, s in zip(mpp, base, shape)) for shape in level_shapes
    ]


def choose_level(level_mpps, target_mpp, tolerance=LEVEL_TOLERANCE):
    """The pyramid level to read ``target_mpp`` from, and the resize factor.

    The coarsest level at least as fine as the target is read and shrunk
    by ``level mpp / target_mpp``; when every level is coarser, level 0 is
    read and enlarged, if it is at most ``tolerance`` coarser (a factor
    within 0.1% of 1 is exactly 1: nothing to resize).

    Args:
        level_mpps: list of ``(mpp_y, mpp_x)``, finest first
            (:func:`level_mpps`).
        target_mpp: float > 0, the requested microns per pixel.
        tolerance: float >= 0, how much coarser than the target level 0 may
            be.

    Returns:
        ``(level, (factor_y, factor_x))``: output pixels per level pixel.

    Raises:
        ValueError: level 0 is more than ``tolerance`` coarser than the
            target.

    Example:
        >>> from ats.data.resolution import choose_level
        >>> mpps = [(0.25, 0.25), (1.0, 1.0), (4.0, 4.0)]
        >>> choose_level(mpps, 1.0)        # a level matches: read as it is
        (1, (1.0, 1.0))
        >>> choose_level(mpps, 0.5)        # none does: the finer one, halved
        (0, (0.5, 0.5))
    """
    target = _positive(target_mpp)
    if target is None:
        raise ValueError(f"target_mpp must be a number > 0, got {target_mpp!r}")
    finer = [
        level for level, mpp in enumerate(level_mpps) if max(mpp) <= target * (1 + 1e-3)
    ]
    finest = max(level_mpps[0])
    if finer:
        level = max(finer, key=lambda index: min(level_mpps[index]))
    elif finest <= target * (1 + tolerance):
        level = 0
    else:
        raise ValueError(
            f"its finest level has {finest:.4g} microns per pixel, more than "
            f"{tolerance:.0%} coarser than the {target:.4g} asked for (it was "
            "scanned at a lower magnification): ask for "
            f"{finest:.4g} microns per pixel or more"
        )
    factor = tuple(m / target for m in level_mpps[level])
    if all(abs(f - 1) <= 1e-3 for f in factor):
        factor = (1.0, 1.0)
    return level, factor


def resized_shape(shape, factor):
    """``shape`` times ``factor`` per axis, rounded, at least 1.

    Args:
        shape: ``(h, w)`` ints.
        factor: float or ``(factor_y, factor_x)``.

    Returns:
        ``(h, w)`` ints.

    Example:
        >>> from ats.data.resolution import resized_shape
        >>> resized_shape((1001, 600), (0.5, 0.5))
        (500, 300)
    """
    factors = factor if isinstance(factor, (tuple, list)) else (factor,) * len(shape)
    return tuple(max(1, int(round(s * f))) for s, f in zip(shape, factors))


def checked_mpps(patch_mpp, low_mpp, where):
    """The requested ``patch_mpp`` and ``low_mpp``, checked: each None or a
    float > 0, and the low view no finer than the patches.

    Args:
        patch_mpp, low_mpp: the requested microns per pixel, or None.
        where: str, the function named in errors.

    Returns:
        ``(patch_mpp, low_mpp)``, floats or None.

    Raises:
        ValueError: a value is not a number > 0, or ``low_mpp <
            patch_mpp``.

    Example:
        >>> from ats.data.resolution import checked_mpps
        >>> checked_mpps(0.5, 32, "ats fit")
        (0.5, 32.0)
    """
    patch_mpp, low_mpp = (
        None
        if value is None
        else checks.real(name, value, 0, exclusive_minimum=True, where=where)
        for name, value in (("patch_mpp", patch_mpp), ("low_mpp", low_mpp))
    )
    if None not in (patch_mpp, low_mpp) and low_mpp < patch_mpp:
        checks.fail("low_mpp", f"at least patch_mpp={patch_mpp}", low_mpp, where)
    return patch_mpp, low_mpp
