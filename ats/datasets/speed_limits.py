"""Speed Limits: the paper's second experiment, from the Swedish Traffic Signs.

The Swedish Traffic Signs data set (Larsson & Felsberg, 2011;
https://www.cvl.isy.liu.se/research/datasets/traffic-signs-dataset/) holds
1280x960 dashcam photographs in two sets, ``Set1`` and ``Set2``, each
with an ``annotations.txt`` of one line per photograph, such as (one line)::

    1277381656Image000003.jpg:VISIBLE, 862.0, 447.6, 815.3, 400.3,
    PROHIBITORY, 70_SIGN;MISC_SIGNS;

that is ``FILE:SIGN;SIGN;...`` where a sign is ``visibility, x_max, y_max,
x_min, y_min, type, name`` (visibility one of ``VISIBLE``, ``BLURRED``,
``SIDE_ROAD``, ``OCCLUDED``) or just ``MISC_SIGNS``; a photograph without
signs has nothing after the colon.

The Speed Limits subset is made exactly as the original library's
``scripts/speed_limits.py`` (idiap/attention-sampling) made it:

* ``MISC_SIGNS`` entries are dropped while parsing, so a photograph with
  only ``MISC_SIGNS`` counts as having no sign;
* a photograph without signs is class 0 (no speed limit);
* otherwise only its ``50_SIGN``, ``70_SIGN`` and ``80_SIGN`` are kept,
  sorted by visibility (in the order above) then by decreasing box area; a
  photograph with signs but no speed limit is dropped, and so is one whose
  first speed limit is not ``VISIBLE``;
* the label is that first sign's: 1, 2, 3 for 50, 70, 80 km/h;
* with ``seed=0`` the training images are ``Set1`` and the test images
  ``Set2`` (the script's ``Set{1 + (seed + 1 + train) % 2}``).

The manifest's labels are :data:`LABELS`, spelled so that their sorted order
is the script's class order. The original script had no validation set (it
monitored the test set while training); here ``val_fraction`` of the
training drive's sequences become one (``val_fraction=0`` keeps the
original training set). Photographs of one recording sequence (the number
before ``Image`` in their names) share a ``group``, so near-identical
consecutive frames never straddle train and validation.

Downloading (:func:`download`) fetches the archives the original script
fetched, ``SetNPart0.zip`` and ``annotations.txt`` of each set. The
annotation files are checked against the md5 sums of the original script;
no official checksum of the image archives is known (the original script
did not check them either), so their sha256 is computed and written to
``DIR/SHA256SUMS`` for the record.

Example:
    >>> from ats.datasets.speed_limits import parse_line, speed_limit_label
    >>> image, signs = parse_line(
    ...     "a.jpg:VISIBLE, 862, 447, 815, 400, PROHIBITORY, 70_SIGN;MISC_SIGNS;")
    >>> image, [s.name for s in signs], speed_limit_label(signs)
    ('a.jpg', ['70_SIGN'], 2)
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import checks
from . import downloads

__all__ = [
    "SETS",
    "URLS",
    "ANNOTATION_MD5",
    "LIMITS",
    "CLASSES",
    "LABELS",
    "VISIBILITIES",
    "Sign",
    "parse_line",
    "parse_annotations",
    "speed_limit_label",
    "download",
    "write_manifest",
]

SETS = ("Set1", "Set2")
_BASE = "http://www.isy.liu.se/cvl/research/trafficSigns/swedishSignsSummer"
URLS = {
    name: {
        "archive": f"{_BASE}/{name}/{name}Part0.zip",
        "annotations": f"{_BASE}/{name}/annotations.txt",
    }
    for name in SETS
}
"""The URLs of the original script, per set: image archive and annotations."""

ANNOTATION_MD5 = {
    "Set1": "9106a905a86209c95dc9b51d12f520d6",
    "Set2": "09debbc67f6cd89c1e2a2688ad1d03ca",
}
"""md5 of each set's ``annotations.txt`` (from the original script)."""

VISIBILITIES = ("VISIBLE", "BLURRED", "SIDE_ROAD", "OCCLUDED")
LIMITS = ("50_SIGN", "70_SIGN", "80_SIGN")
CLASSES = ("EMPTY", *LIMITS)
"""The original script's classes, in its order (index = class)."""
LABELS = ("0_none", "1_limit50", "2_limit70", "3_limit80")
"""The manifest's labels of :data:`CLASSES` (sorted = the same order)."""


class Sign(NamedTuple):
    """One annotated sign: ``bbox`` is ``(x_max, y_max, x_min, y_min)``."""

    visibility: str
    bbox: tuple
    type: str
    name: str

    @property
    def area(self) -> float:
        x_max, y_max, x_min, y_min = self.bbox
        return (x_max - x_min) * (y_max - y_min)

    def sort_key(self):
        """Visibility first (``VISIBLE`` first), then larger boxes first."""
        return (VISIBILITIES.index(self.visibility), -self.area)


def _number(text, where):
    # The original strips trailing characters until the text parses
    # (the annotations hold a few typos such as "1020.3l").
    original = text
    while text:
        try:
            return float(text)
        except ValueError:
            text = text[:-1]
    raise ValueError(f"{where}: expected a number, got {original!r}")


def parse_line(line, where="annotations"):
    """Parse one line of an ``annotations.txt``.

    Args:
        line: str, ``FILE:SIGN;SIGN;...``.
        where: str, the file and line number for error messages.

    Returns:
        ``(file name, list of Sign)``, ``MISC_SIGNS`` left out.

    Raises:
        ValueError: the line is not in the format (naming ``where``).
    """
    line = line.strip()
    if ":" not in line:
        raise ValueError(f"{where}: expected 'FILE:SIGN;SIGN;...', got {line!r}")
    image, rest = line.split(":", 1)
    signs = []
    for text in rest.split(";"):
        if text.strip() == "":
            continue
        parts = [s.strip() for s in text.split(",")]
        if parts[0] == "MISC_SIGNS":
            continue
        if len(parts) < 7:
            raise ValueError(
                f"{where}: a sign must be 'visibility, x_max, y_max, x_min, "
                f"y_min, type, name' or MISC_SIGNS, got {text.strip()!r}"
            )
        if parts[0] not in VISIBILITIES:
            raise ValueError(
                f"{where}: the visibility must be one of {', '.join(VISIBILITIES)}, "
                f"got {parts[0]!r}"
            )
        bbox = tuple(_number(p, where) for p in parts[1:5])
        signs.append(Sign(parts[0], bbox, parts[5], parts[6]))
    return image.strip(), signs


def parse_annotations(path):
    """Parse a set's ``annotations.txt``.

    Args:
        path: the file.

    Returns:
        List of ``(file name, list of Sign)`` in the file's order (blank
        lines skipped).

    Raises:
        ValueError: a line is not in the format (naming the file and line).
        FileNotFoundError: no such file.
    """
    path = Path(path)
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                out.append(parse_line(line, where=f"{path}, line {number}"))
    return out


def speed_limit_label(signs):
    """The Speed Limits class of a photograph, or None when it is dropped.

    Args:
        signs: list of :class:`Sign` (``MISC_SIGNS`` already left out).

    Returns:
        0 without signs; else the index in :data:`CLASSES` of the most
        visible, then largest, speed limit sign if it is ``VISIBLE``; None
        (dropped) when no sign is a speed limit or the first one is not
        visible.

    Example:
        >>> from ats.datasets.speed_limits import Sign, speed_limit_label
        >>> far = Sign("VISIBLE", (10, 10, 0, 0), "PROHIBITORY", "50_SIGN")
        >>> near = Sign("VISIBLE", (90, 90, 0, 0), "PROHIBITORY", "80_SIGN")
        >>> speed_limit_label([]), speed_limit_label([far, near])
        (0, 3)
        >>> blurred = Sign("BLURRED", (90, 90, 0, 0), "PROHIBITORY", "80_SIGN")
        >>> print(speed_limit_label([blurred]))
        None
    """
    if not signs:
        return 0
    limits = sorted((s for s in signs if s.name in LIMITS), key=Sign.sort_key)
    if not limits or limits[0].visibility != "VISIBLE":
        return None
    return CLASSES.index(limits[0].name)


def download(directory, opener=None, progress=None):
    """Download and unpack both sets into ``directory``.

    Writes ``DIR/SetN/annotations.txt`` (md5 checked), ``DIR/SetNPart0.zip``
    unpacked into ``DIR/SetN/``, and ``DIR/SHA256SUMS``. Files already there
    and correct are not downloaded again.

    Args:
        directory: the data set's folder.
        opener: optional ``urlopen``-like function (tests).
        progress: optional text stream for progress lines.

    Returns:
        dict of file names (relative to ``directory``) to their digests.

    Raises:
        ValueError: a checksum does not match (naming the file).
        OSError: a download failed.
    """
    directory = Path(directory)
    digests = {}
    for name in SETS:
        archive = f"{name}Part0.zip"
        digests[archive] = downloads.fetch(
            URLS[name]["archive"], directory / archive, opener=opener, progress=progress
        )
        downloads.unzip(directory / archive, directory / name, marker=".extracted")
        annotations = f"{name}/annotations.txt"
        digests[annotations] = downloads.fetch(
            URLS[name]["annotations"],
            directory / annotations,
            md5=ANNOTATION_MD5[name],
            opener=opener,
            progress=progress,
        )
    downloads.write_sums(directory / "SHA256SUMS", digests)
    return digests


def _group(file_name):
    match = re.match(r"(.+?)Image\d+", Path(file_name).name)
    return match.group(1) if match else Path(file_name).stem


def _find(set_dir, names):
    """Map file names to paths under ``set_dir`` (direct, else anywhere)."""
    found = {}
    index = None
    for name in names:
        if (set_dir / name).is_file():
            found[name] = set_dir / name
            continue
        if index is None:
            index = {p.name: p for p in sorted(set_dir.rglob("*")) if p.is_file()}
        if Path(name).name in index:
            found[name] = index[Path(name).name]
    return found


def write_manifest(directory, seed=0, val_fraction=0.1):
    """Write ``DIR/manifest.csv`` of the Speed Limits subset.

    Columns ``path`` (relative to ``directory``), ``label`` (one of
    :data:`LABELS`), ``split`` (``train``, ``val`` or ``test``) and
    ``group`` (the recording sequence).

    Args:
        directory: the folder holding ``Set1/`` and ``Set2/`` (as
            :func:`download` writes them).
        seed: int; even: train on ``Set1``, test on ``Set2`` (the paper's
            split); odd: the other way round. Also seeds the choice of the
            validation sequences.
        val_fraction: float in [0, 1), about this fraction of the training
            photographs (whole sequences, at least one sequence left for
            training) becomes the validation split.

    Returns:
        ``pathlib.Path`` of the manifest.

    Raises:
        FileNotFoundError: an ``annotations.txt`` is missing.
        ValueError: an annotation line is malformed, or photographs that
            the annotations list are missing (their names are given).
    """
    seed = checks.seed("seed", seed)
    val_fraction = checks.real("val_fraction", val_fraction, minimum=0.0)
    if val_fraction >= 1:
        checks.fail("val_fraction", "a number in [0, 1)", val_fraction)
    directory = Path(directory)
    train_set = SETS[(seed + 2) % 2]
    rows, missing = [], []
    for name in SETS:
        annotations = directory / name / "annotations.txt"
        if not annotations.is_file():
            raise FileNotFoundError(
                f"{annotations}: no such file (download the data set first: "
                f"ats datasets speed-limits {directory})"
            )
        kept = []
        for image, signs in parse_annotations(annotations):
            label = speed_limit_label(signs)
            if label is not None:
                kept.append((image, label))
        found = _find(directory / name, [image for image, _ in kept])
        split = "train" if name == train_set else "test"
        for image, label in kept:
            if image not in found:
                missing.append(f"{name}/{image}")
                continue
            path = found[image].relative_to(directory).as_posix()
            rows.append([path, LABELS[label], split, f"{name}-{_group(image)}"])
    if missing:
        raise ValueError(
            f"{directory}: {len(missing)} annotated photograph(s) missing, e.g. "
            f"{', '.join(missing[:5])} (is every SetNPart0.zip unpacked into "
            f"its SetN folder?)"
        )
    _choose_validation(rows, val_fraction, seed)
    manifest = directory / "manifest.csv"
    tmp = manifest.with_name("manifest.csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("path", "label", "split", "group"))
        writer.writerows(rows)
    os.replace(tmp, manifest)
    return manifest


def _choose_validation(rows, fraction, seed):
    """Move whole training groups to ``val`` until ``fraction`` is reached."""
    train = [r for r in rows if r[2] == "train"]
    groups = sorted({r[3] for r in train})
    wanted = round(fraction * len(train))
    if wanted == 0 or len(groups) < 2:
        return
    sizes = {g: sum(r[3] == g for r in train) for g in groups}
    chosen, total = set(), 0
    for index in np.random.default_rng(seed).permutation(len(groups)):
        if total >= wanted or len(chosen) == len(groups) - 1:
            break
        chosen.add(groups[index])
        total += sizes[groups[index]]
    for r in train:
        if r[3] in chosen:
            r[2] = "val"
