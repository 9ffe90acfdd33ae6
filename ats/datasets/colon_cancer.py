"""Colon cancer: the paper's third experiment, from CRCHistoPhenotypes.

The CRCHistoPhenotypes data set (Sirinukunwattana et al., 2016; University
of Warwick, https://warwick.ac.uk/fac/cross_fac/tia/data/crchistolabelednucleihe/)
holds 100 H&E stained images of colorectal adenocarcinoma, 500x500 pixels,
with their nuclei annotated. The archive unpacks to::

    CRCHistoPhenotypes_2016_04_28/Classification/img1/img1.bmp
                                                      img1_epithelial.mat
                                                      img1_fibroblast.mat
                                                      img1_inflammatory.mat
                                                      img1_others.mat
    CRCHistoPhenotypes_2016_04_28/Detection/img1/...

where each ``imgN_epithelial.mat`` (MATLAB) holds a ``detection`` array of
one ``(x, y)`` row per epithelial nucleus. As in the paper, an image is
*positive* when at least one epithelial nucleus is annotated (its
``detection`` array has a row) and *negative* otherwise; the labels are
``"negative"`` and ``"positive"`` (class 0 and 1, sorted). The original
library's public repository has no colon cancer script; this is the rule of
the paper and of the PyTorch re-implementation
(sara-nl/attention-sampling-pytorch, ``dataset/colon_cancer_dataset.py``:
``category = int(mat.shape[0] > 0)`` on ``loadmat(...)['detection']``),
which used a low view at scale 0.2, 10 patches of 27x27.

The paper reports the mean over random train/test splits, so the manifest
has no ``split`` column: ``ats fit`` draws a seeded stratified split.
The BMP images are converted once to lossless PNG files next to them
(``imgN.png``), the format every reader of ``ats`` opens.

Downloading (:func:`download`) fetches ``ARCHIVE_URL``. No official
checksum of the archive is published; its sha256 is computed and written to
``DIR/SHA256SUMS``, and a known one can be given with ``sha256=``. If the
host refuses the download (it has put the file behind a form at times),
put the zip archive in ``DIR`` yourself: it is then unpacked as if
downloaded.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np, scipy.io
    >>> from ats.datasets.colon_cancer import epithelial_count
    >>> mat = Path(tempfile.mkdtemp()) / "img1_epithelial.mat"
    >>> scipy.io.savemat(mat, {"detection": np.array([[10.5, 20.0], [3.0, 4.0]])})
    >>> epithelial_count(mat)
    2
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from . import downloads

__all__ = [
    "ARCHIVE",
    "ARCHIVE_URL",
    "LABELS",
    "download",
    "epithelial_count",
    "find_images",
    "write_manifest",
]

ARCHIVE = "crchistophenotypes_2016_04_28.zip"
ARCHIVE_URL = (
    "https://warwick.ac.uk/fac/cross_fac/tia/data/crchistolabelednucleihe/" + ARCHIVE
)
"""The official archive (an older address, ``.../fac/sci/dcs/research/tia/
data/crchistolabelednucleihe/...``, is the one most code cites)."""

LABELS = ("negative", "positive")
"""Class 0: no epithelial nucleus annotated; class 1: at least one."""

_NAME = re.compile(r"img(\d+)$")


def download(directory, sha256=None, opener=None, progress=None):
    """Download (unless already there) and unpack the archive.

    Args:
        directory: the data set's folder; the archive is
            ``DIR/crchistophenotypes_2016_04_28.zip``.
        sha256: optional hex digest the archive must have.
        opener: optional ``urlopen``-like function (tests).
        progress: optional text stream for progress lines.

    Returns:
        dict ``{archive name: {"md5": ..., "sha256": ...}}``.

    Raises:
        ValueError: the checksum does not match, or the archive is not a
            zip file (e.g. the host answered with a web page).
        OSError: the download failed.
    """
    directory = Path(directory)
    digests = {
        ARCHIVE: downloads.fetch(
            ARCHIVE_URL,
            directory / ARCHIVE,
            sha256=sha256,
            opener=opener,
            progress=progress,
        )
    }
    downloads.unzip(directory / ARCHIVE, directory, marker=".extracted")
    downloads.write_sums(directory / "SHA256SUMS", digests)
    return digests


def epithelial_count(mat_path):
    """The number of epithelial nuclei annotated in an ``imgN_epithelial.mat``.

    Args:
        mat_path: the MATLAB file (``scipy.io.loadmat``).

    Returns:
        int, the rows of its ``detection`` array (0 when empty).

    Raises:
        ValueError: the file has no ``detection`` array or is not a
            MATLAB file (naming it).
    """
    from scipy.io import loadmat

    try:
        content = loadmat(mat_path)
    except FileNotFoundError:
        raise
    except Exception as error:  # scipy's MatReadError, ValueError, ...
        raise ValueError(f"{mat_path}: not a readable MATLAB file ({error})") from None
    if "detection" not in content:
        keys = sorted(k for k in content if not k.startswith("__"))
        raise ValueError(
            f"{mat_path}: expected a 'detection' array, got the variables {keys}"
        )
    detection = content["detection"]
    return int(detection.shape[0]) if detection.size else 0


def find_images(directory):
    """The annotated images under ``directory``.

    Looks for folders ``imgN`` holding ``imgN.bmp`` (or ``.png``) and
    ``imgN_epithelial.mat`` anywhere below ``directory`` (the archive's
    ``Classification`` folder); the ``Detection`` folder's copies, which
    have no ``_epithelial.mat``, are left out.

    Args:
        directory: the data set's folder.

    Returns:
        List of ``(N, image path, mat path)`` sorted by ``N``.

    Raises:
        ValueError: two folders hold the same ``imgN``.
    """
    found = {}
    for mat in sorted(Path(directory).rglob("img*_epithelial.mat")):
        folder = mat.parent
        match = _NAME.match(mat.name[: -len("_epithelial.mat")])
        if not match:
            continue
        stem = f"img{match.group(1)}"
        image = folder / f"{stem}.bmp"
        if not image.is_file():
            image = folder / f"{stem}.png"
        if not image.is_file():
            raise ValueError(f"{folder}: {mat.name} has no {stem}.bmp next to it")
        number = int(match.group(1))
        if number in found:
            raise ValueError(
                f"{directory}: {stem} found twice: {found[number][1]} and {mat}"
            )
        found[number] = (number, image, mat)
    return [found[n] for n in sorted(found)]


def _as_png(image):
    """``imgN.png`` next to ``imgN.bmp``, converted once (lossless)."""
    if image.suffix.lower() == ".png":
        return image
    png = image.with_suffix(".png")
    if not png.exists() or png.stat().st_mtime_ns < image.stat().st_mtime_ns:
        from PIL import Image

        tmp = png.with_name(png.name + ".tmp")
        with Image.open(image) as im:
            im.convert("RGB").save(tmp, format="PNG")
        os.replace(tmp, png)
    return png


def write_manifest(directory):
    """Write ``DIR/manifest.csv``: one row per image, ``path,label``.

    ``path`` is relative to ``directory`` (the PNG copy of the BMP image),
    ``label`` is ``"positive"`` when its ``imgN_epithelial.mat`` annotates
    at least one nucleus, else ``"negative"``.

    Args:
        directory: the folder the archive was unpacked in.

    Returns:
        ``pathlib.Path`` of the manifest.

    Raises:
        ValueError: no annotated image was found, or a ``.mat`` file is
            unreadable (naming it).
    """
    directory = Path(directory)
    images = find_images(directory)
    if not images:
        raise ValueError(
            f"{directory}: no imgN/imgN_epithelial.mat found (download the "
            f"data set first: ats datasets colon-cancer {directory})"
        )
    rows = []
    for _, image, mat in images:
        label = LABELS[int(epithelial_count(mat) > 0)]
        rows.append((_as_png(image).relative_to(directory).as_posix(), label))
    manifest = directory / "manifest.csv"
    tmp = manifest.with_name("manifest.csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("path", "label"))
        writer.writerows(rows)
    os.replace(tmp, manifest)
    return manifest
