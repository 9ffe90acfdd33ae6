"""Colon cancer: the .mat parser, the labels, the manifest and the checked
download, on small files in the real formats (no network)."""

import csv
import hashlib
import io
import zipfile

import numpy as np
import pytest

from ats.datasets import colon_cancer
from ats.datasets.colon_cancer import (
    LABELS,
    epithelial_count,
    find_images,
    write_manifest,
)

PIL = pytest.importorskip("PIL.Image")
scipy_io = pytest.importorskip("scipy.io")

ROOT = "CRCHistoPhenotypes_2016_04_28"
# image number -> epithelial nuclei (x, y) rows, as in imgN_epithelial.mat
NUCLEI = {1: [[10.5, 20.25], [30.0, 40.0]], 2: [], 10: [[1.0, 2.0]], 3: []}


def _image(folder, stem, value):
    pixels = np.full((50, 60, 3), value, np.uint8)
    pixels[..., 1] = 200
    PIL.fromarray(pixels).save(folder / f"{stem}.bmp")
    return pixels


def _dataset(root):
    """The archive's layout: Classification/imgN/{imgN.bmp, imgN_*.mat}, and
    Detection/imgN/ copies without the epithelial file."""
    pixels = {}
    for n, rows in NUCLEI.items():
        folder = root / ROOT / "Classification" / f"img{n}"
        folder.mkdir(parents=True)
        pixels[n] = _image(folder, f"img{n}", 10 * n)
        detection = np.array(rows, dtype=np.float64).reshape(-1, 2)
        scipy_io.savemat(folder / f"img{n}_epithelial.mat", {"detection": detection})
        scipy_io.savemat(
            folder / f"img{n}_fibroblast.mat", {"detection": np.zeros((3, 2))}
        )
        other = root / ROOT / "Detection" / f"img{n}"
        other.mkdir(parents=True)
        _image(other, f"img{n}", 0)
        scipy_io.savemat(
            other / f"img{n}_detection.mat", {"detection": np.ones((5, 2))}
        )
    return pixels


def test_epithelial_count_reads_the_detection_array(tmp_path):
    _dataset(tmp_path)
    folder = tmp_path / ROOT / "Classification"
    assert epithelial_count(folder / "img1" / "img1_epithelial.mat") == 2
    assert epithelial_count(folder / "img2" / "img2_epithelial.mat") == 0
    assert epithelial_count(folder / "img10" / "img10_epithelial.mat") == 1


def test_bad_mat_files_are_named(tmp_path):
    wrong = tmp_path / "img1_epithelial.mat"
    scipy_io.savemat(wrong, {"points": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"img1_epithelial\.mat.*'detection'"):
        epithelial_count(wrong)
    garbage = tmp_path / "img2_epithelial.mat"
    garbage.write_bytes(b"not a matlab file at all" * 10)
    with pytest.raises(ValueError, match=r"img2_epithelial\.mat"):
        epithelial_count(garbage)


def test_find_images_takes_the_classification_folders_in_order(tmp_path):
    _dataset(tmp_path)
    found = find_images(tmp_path)
    assert [n for n, _, _ in found] == [1, 2, 3, 10]
    assert all("Classification" in str(image) for _, image, _ in found)


def test_manifest_labels_positive_where_nuclei_are_annotated(tmp_path):
    pixels = _dataset(tmp_path)
    manifest = write_manifest(tmp_path)
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "label"]
    labels = {r["path"]: r["label"] for r in rows}
    assert labels == {
        f"{ROOT}/Classification/img{n}/img{n}.png": LABELS[int(len(NUCLEI[n]) > 0)]
        for n in (1, 2, 3, 10)
    }
    assert LABELS == ("negative", "positive")
    # the PNG copy holds the BMP's pixels exactly
    with PIL.open(tmp_path / rows[0]["path"]) as image:
        np.testing.assert_array_equal(np.asarray(image), pixels[1])
    # written again: the same manifest
    assert write_manifest(tmp_path).read_text() == manifest.read_text()


def test_empty_folder_says_how_to_download(tmp_path):
    with pytest.raises(ValueError, match="ats datasets colon-cancer"):
        write_manifest(tmp_path)


def _archive(tmp_path):
    source = tmp_path / "source"
    _dataset(source)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(source).as_posix())
    return buffer.getvalue()


def test_download_unpacks_and_checks_the_sha256(tmp_path, monkeypatch):
    data = _archive(tmp_path)
    served = tmp_path / "served.zip"
    served.write_bytes(data)
    monkeypatch.setattr(colon_cancer, "ARCHIVE_URL", served.as_uri())
    digest = hashlib.sha256(data).hexdigest()
    folder = tmp_path / "data"
    got = colon_cancer.download(folder, sha256=digest)
    assert got[colon_cancer.ARCHIVE]["sha256"] == digest
    assert digest in (folder / "SHA256SUMS").read_text()
    assert len(find_images(folder)) == 4

    other = tmp_path / "other"
    with pytest.raises(ValueError, match=colon_cancer.ARCHIVE) as error:
        colon_cancer.download(other, sha256="f" * 64)
    assert "f" * 64 in str(error.value) and digest in str(error.value)
    assert not (other / colon_cancer.ARCHIVE).exists()


def test_an_archive_put_there_by_hand_is_used(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / colon_cancer.ARCHIVE).write_bytes(_archive(tmp_path))

    def opener(url):
        raise AssertionError("no download when the archive is there")

    colon_cancer.download(folder, opener=opener)
    assert len(find_images(folder)) == 4


def test_a_web_page_instead_of_the_archive_is_an_error(tmp_path):
    def opener(url):
        assert url == colon_cancer.ARCHIVE_URL
        return io.BytesIO(b"<html>please log in</html>")

    with pytest.raises(ValueError, match="not a readable zip archive"):
        colon_cancer.download(tmp_path, opener=opener)
