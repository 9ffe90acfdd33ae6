"""The synthetic data set of mixed sizes: what it promises, checked."""

import csv
import json

import numpy as np
import pytest

from ats.datasets import synthetic_sizes
from ats.datasets.synthetic_sizes import (
    FORMATS,
    LABELS,
    image_plan,
    mark,
    write_synthetic,
)

PIL = pytest.importorskip("PIL.Image")
tifffile = pytest.importorskip("tifffile")


def _rows(manifest):
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def _read(path):
    if path.suffix == ".tif":
        return tifffile.imread(path)
    with PIL.open(path) as image:
        return np.asarray(image)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    manifest = write_synthetic(folder, n_images=12, seed=3, max_side=1200)
    return folder, manifest


def test_manifest_lists_every_file_with_a_balanced_label(written):
    folder, manifest = written
    rows = _rows(manifest)
    assert list(rows[0]) == ["path", "label"]
    assert len(rows) == 12
    labels = [r["label"] for r in rows]
    assert sorted(set(labels)) == list(LABELS)
    assert labels.count(LABELS[0]) == labels.count(LABELS[1]) == 6
    for r in rows:
        assert (folder / r["path"]).is_file()


def test_formats_sizes_and_aspect_ratios_are_mixed(written):
    folder, manifest = written
    rows = _rows(manifest)
    suffixes = {(folder / r["path"]).suffix for r in rows}
    assert suffixes == {".png", ".jpg", ".tif"}
    shapes = [_read(folder / r["path"]).shape for r in rows]
    assert all(len(s) == 2 for s in shapes)  # grayscale, one channel
    assert all(min(s) >= 400 and max(s) <= 1200 for s in shapes)
    ratios = {round(s[1] / s[0], 2) for s in shapes}
    assert len(set(shapes)) >= 8
    assert any(r > 1.2 for r in ratios) and any(r < 0.8 for r in ratios)
    assert len(ratios) >= 4


def test_plan_spans_the_sizes_and_cycles_formats():
    plan = image_plan(300, seed=0)
    longs = np.array([max(p["shape"]) for p in plan])
    assert longs.min() >= 400 and longs.max() <= 4000
    # log-uniform: about a third of the long sides in each decade-third
    thirds = np.histogram(np.log10(longs), bins=[np.log10(400), 3.0, 3.3, 4])[0]
    assert (thirds > 50).all()
    assert [p["format"] for p in plan[:6]] == list(FORMATS) * 2
    assert {p["n_objects"] for p in plan} == {1, 2, 3}
    ratios = {max(p["shape"]) / min(p["shape"]) for p in plan}
    assert len({round(r, 1) for r in ratios}) >= 4


def test_tiffs_are_tiled_pyramids_with_a_reduced_level(written):
    folder, manifest = written
    tiffs = [folder / r["path"] for r in _rows(manifest) if r["path"].endswith(".tif")]
    assert tiffs
    for path in tiffs:
        with tifffile.TiffFile(path) as tif:
            levels = tif.series[0].levels
            assert len(levels) >= 2
            assert tif.pages[0].is_tiled
            assert levels[1].keyframe.is_reduced
            full, half = levels[0].shape, levels[1].shape
            assert half == tuple((s + 1) // 2 for s in full)


def test_marks_are_where_objects_json_says(written):
    folder, manifest = written
    objects = json.loads((folder / "objects.json").read_text())
    for r in _rows(manifest):
        image = _read(folder / r["path"]).astype(np.float32) / 255
        boxes = objects[r["path"]]
        assert 1 <= len(boxes) <= 3
        for y0, x0, y1, x1 in boxes:
            window = image[y0:y1, x0:x1]
            assert window.shape == (22, 22)
            # the dark disk: the darkest pixels of the image are there
            assert window.min() < 0.2
            assert np.percentile(image, 1) > 0.2


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = write_synthetic(tmp_path / "a", n_images=3, seed=5, max_side=500)
    b = write_synthetic(tmp_path / "b", n_images=3, seed=5, max_side=500)
    c = write_synthetic(tmp_path / "c", n_images=3, seed=6, max_side=500)
    assert a.read_text() == b.read_text()
    for r in _rows(a):
        assert (a.parent / r["path"]).read_bytes() == (
            b.parent / r["path"]
        ).read_bytes()
    first = _rows(a)[0]["path"]
    assert not np.array_equal(_read(a.parent / first), _read(c.parent / first))


def _area_downscale(image, factor):
    h, w = (s // factor * factor for s in image.shape)
    return image[:h, :w].reshape(h // factor, factor, w // factor, factor).mean((1, 3))


@pytest.mark.parametrize("factor", [8, 10])
def test_classes_differ_at_full_resolution_only(factor):
    """The two marks, drawn at the same random places on a flat background:
    at full resolution some pixels differ by the whole contrast of the
    cross (a third of the range); downscaled by ``factor`` (area averaging,
    as a low view), they differ on average by less than 12% of the mark's
    own darkening of the background."""
    rng = np.random.default_rng(0)
    low_gaps, full_gaps = [], []
    for _ in range(200):
        top, left = (int(v) for v in rng.integers(8, 40, 2))
        views = []
        for label in (0, 1):
            canvas = np.full((80, 80), 0.55, np.float32)
            synthetic_sizes._stamp(canvas, top, left, label, 22)
            views.append(canvas)
        full_gaps.append(np.abs(views[0] - views[1]).max())
        low = [_area_downscale(v, factor) for v in views]
        darkening = max((0.55 - lo).max() for lo in low)
        low_gaps.append(np.abs(low[0] - low[1]).max() / darkening)
    assert np.min(full_gaps) > 0.3
    assert np.mean(low_gaps) < 0.12
    assert np.max(low_gaps) < 0.25


def test_marks_have_the_same_ink():
    disk0, cross0 = mark(0)
    disk1, cross1 = mark(1)
    np.testing.assert_array_equal(disk0, disk1)
    assert abs(cross0.sum() - cross1.sum()) < 0.02 * disk0.sum()


@pytest.mark.parametrize(
    "options, name",
    [
        ({"min_side": 100}, "min_side"),
        ({"n_objects": (3, 1)}, "n_objects"),
        ({"n_images": 0}, "n_images"),
        ({"tile": 100}, "tile"),
    ],
)
def test_bad_arguments_are_named(tmp_path, options, name):
    with pytest.raises(ValueError, match=name):
        write_synthetic(tmp_path, **options)
