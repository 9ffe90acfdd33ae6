"""What ``ats predict`` writes for QuPath and slide viewers: GeoJSON objects
in level-0 pixels (valid GeoJSON, the rectangles where the patches were
read) and an attention TIFF whose shape and tags map back to the image."""

import csv
import json
from types import SimpleNamespace

import geojson
import numpy as np
import pytest
import tifffile
from PIL import Image

from ats.experiments import your_data
from ats.training.qupath import (
    attention_grid_features,
    patch_features,
    write_geojson,
)
from ats.training.slide_heatmap import (
    attention_raster,
    read_heatmap_description,
    write_heatmap_tiff,
)


def rectangle(feature):
    """``(top, left, bottom, right)`` of a rectangle feature, checking that
    its ring is closed and axis-aligned."""
    (ring,) = feature["geometry"]["coordinates"]
    assert feature["geometry"]["type"] == "Polygon" and len(ring) == 5
    assert ring[0] == ring[-1]
    (x0, y0), (x1, _), (_, y1) = ring[0], ring[1], ring[2]
    assert ring[1][1] == y0 and ring[2][0] == x1 and ring[3] == [x0, y1]
    return y0, x0, y1, x1


def valid(path):
    """The file's GeoJSON object, checked valid by the ``geojson`` package."""
    collection = geojson.loads(path.read_text())
    assert collection.is_valid, collection.errors()
    assert collection["type"] == "FeatureCollection"
    return collection


def test_patch_rectangles_in_level0_pixels(tmp_path):
    features = patch_features(
        [[10, 20], [-5, 100]], (32, 48), [0.5, 0.25], scale=(2.0, 4.0)
    )
    assert [rectangle(f) for f in features] == [
        (20.0, 80.0, 84.0, 272.0),
        (-10.0, 400.0, 54.0, 592.0),
    ]
    assert [f["properties"]["measurements"] for f in features] == [
        {"attention": 0.5, "rank": 1},
        {"attention": 0.25, "rank": 2},
    ]
    assert {f["properties"]["objectType"] for f in features} == {"annotation"}
    path = write_geojson(tmp_path / "a.geojson", features)
    assert len(valid(path)["features"]) == 2
    with pytest.raises(ValueError, match="`attention`"):
        patch_features([[0, 0]], (8, 8), [0.1, 0.2])
    with pytest.raises(ValueError, match="`scale`"):
        patch_features([[0, 0]], (8, 8), [0.1], scale=0)


def test_grid_cells_threshold_order_and_bounds():
    attention = np.zeros((4, 5))
    attention[0, 0], attention[3, 4], attention[2, 1] = 0.5, 0.3, 0.01
    cells = attention_grid_features(
        attention, origin=(1.5, 1.5), cell=(2.0, 2.0), scale=10, bounds=(8, 10)
    )
    # 0.01 is below 5% of 0.5; the cell (3, 4) is clipped to the bounds.
    assert [c["properties"]["measurements"]["attention"] for c in cells] == [0.5, 0.3]
    assert rectangle(cells[0]) == (15.0, 15.0, 35.0, 35.0)
    assert rectangle(cells[1]) == (75.0, 95.0, 80.0, 100.0)
    assert cells[1]["properties"]["measurements"]["attention / max"] == 0.6
    assert {c["properties"]["objectType"] for c in cells} == {"detection"}
    everything = attention_grid_features(attention, (0, 0), 1, min_fraction=0)
    assert len(everything) == 3  # cells of attention 0 never
    most = attention_grid_features(attention, (0, 0), 1, min_fraction=0, max_cells=2)
    assert len(most) == 2
    assert attention_grid_features(np.zeros((3, 3)), (0, 0), 1) == []
    with pytest.raises(ValueError, match="`attention`"):
        attention_grid_features(-attention, (0, 0), 1)


def test_the_raster_paints_the_grid_cells(rng):
    attention = rng.random((6, 7))
    origin, cell, shape = (2.0, 1.0), (1.5, 2.0), (12, 15)
    raster = attention_raster(attention, origin, cell, shape)
    assert raster.shape == shape and raster.dtype == np.float32
    cells = attention_grid_features(
        attention, origin, cell, bounds=shape, min_fraction=0
    )
    painted = np.zeros(shape, bool)
    for feature in cells:
        top, left, bottom, right = rectangle(feature)
        rows = np.arange(shape[0]) + 0.5
        columns = np.arange(shape[1]) + 0.5
        # The pixels whose centre is in [top, bottom) x [left, right).
        inside = np.ix_(
            (rows >= top) & (rows < bottom), (columns >= left) & (columns < right)
        )
        value = feature["properties"]["measurements"]["attention"]
        np.testing.assert_allclose(raster[inside], value, rtol=1e-6)
        painted[inside] = True
    assert np.all(raster[~painted] == 0) and painted.sum() > 0


def test_the_tiff_overlays_level0(tmp_path):
    raster = np.arange(12, dtype="float32").reshape(3, 4)
    path = write_heatmap_tiff(tmp_path / "h.tif", raster, (8.0, 10.0))
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        np.testing.assert_array_equal(page.asarray(), raster)
        assert page.resolutionunit.name == "NONE"
        # Heatmap pixels per level-0 pixel, x then y.
        assert page.get_resolution() == pytest.approx((0.1, 0.125))
    described = read_heatmap_description(path)
    assert described == {
        "downsample": [8.0, 10.0],
        "level0_shape": [24, 40],
        "mpp": None,
        "values": "attention of the cell over each pixel",
    }
    write_heatmap_tiff(path, raster, 16, mpp=(0.25, 0.5))
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.resolutionunit.name == "CENTIMETER"
        # 1 cm / (16 * 0.5 um) along x, 1 cm / (16 * 0.25 um) down y.
        assert page.get_resolution() == pytest.approx((1250, 2500))
    with pytest.raises(ValueError, match="`downsample`"):
        write_heatmap_tiff(path, raster, 0)
    tifffile.imwrite(tmp_path / "plain.tif", raster)
    with pytest.raises(ValueError, match="not a heatmap"):
        read_heatmap_description(tmp_path / "plain.tif")


def test_overlays_of_patches_read_below_level0(tmp_path):
    """Patches read at half resolution (downsample 2): every coordinate
    doubles; the TIFF states level-0 pixels per low-view pixel and the
    level-0 mpp."""
    source = SimpleNamespace(
        downsample=(2.0, 2.0),
        mpp=(0.5, 0.5),
        spatial_shape=(400, 600),
        low_shape=(50, 75, 3),
    )
    attention = np.zeros((50, 75))
    attention[10, 20] = 1.0
    seen = {
        "corners": np.array([[100, 150]]),
        "sampled_attention": np.array([1.0]),
        "attention": attention,
        "extent": [0.0, 0.0, 50.0, 75.0],
        "cell": [1.0, 1.0],
    }
    your_data._write_overlays(tmp_path, "slide", source, seen, (32, 32))
    patch, cell = valid(tmp_path / "slide.geojson")["features"]
    assert rectangle(patch) == (200.0, 300.0, 264.0, 364.0)
    # Low-view pixel (10, 20) is 16 level-0 pixels a side.
    assert rectangle(cell) == (160.0, 320.0, 176.0, 336.0)
    described = read_heatmap_description(tmp_path / "slide_attention.tif")
    assert described["downsample"] == [16.0, 16.0]
    assert described["level0_shape"] == [800, 1200]
    assert described["mpp"] == [0.25, 0.25]


def _write_images(directory, n, rng):
    """``n`` gray PNGs of 160x224 in cases of 2; a bright square in the
    images of the odd cases."""
    rows = []
    for i in range(n):
        image = rng.integers(0, 60, (160, 224)).astype("uint8")
        square = (i // 2) % 2
        if square:
            y, x = rng.integers(0, 130), rng.integers(0, 190)
            image[y : y + 24, x : x + 24] = 255
        Image.fromarray(image).save(directory / f"image{i}.png")
        rows.append([f"image{i}.png", "square" if square else "plain", f"case{i // 2}"])
    return rows


def _manifest(path, header, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run of one epoch on 8 images, and a labelled manifest of 8 more in
    4 cases of 2 images."""
    directory = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    rows = _write_images(directory, 16, rng)
    splits = ["train"] * 8 + ["test"] * 8
    train = _manifest(
        directory / "train.csv",
        ["path", "label", "group", "split"],
        [[*row, split] for row, split in zip(rows, splits)],
    )
    run_dir = tmp_path_factory.mktemp("run")
    your_data.train(
        train,
        run_dir,
        epochs=1,
        batch_size=4,
        patch_size=(32, 32),
        n_patches=3,
        low_scale=0.25,
        picture_images=(),
        verbose=0,
    )
    new = _manifest(directory / "new.csv", ["path", "label", "group"], rows[8:])
    return run_dir, new


def test_evaluation_has_auc_intervals_per_image_and_case(tiny_run):
    run_dir, _ = tiny_run
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    intervals = evaluation["roc_auc_intervals"]
    for way in ("sampled", "top_k"):
        assert intervals[way]["images"]["units"] == 8
        assert intervals[way]["cases"]["units"] == 4
        assert intervals[way]["images"]["resamples"] == 1000
    markdown = (run_dir / "evaluation.md").read_text()
    assert "| per case (4) |" in markdown and "| per image (8) |" in markdown


def test_predict_writes_qupath_objects_where_the_patches_were_read(
    tiny_run, tmp_path, monkeypatch
):
    run_dir, manifest = tiny_run
    reads, recording = [], []

    def recording_open(*args, **kwargs):
        source = open_image(*args, **kwargs)
        checked_corners = source._checked_corners

        # Every read (``read``, ``read_many``) checks its corners here first.
        def check_and_record(corners, size):
            if recording:
                reads.extend((tuple(c), tuple(size)) for c in np.asarray(corners))
            return checked_corners(corners, size)

        source._checked_corners = check_and_record
        return source

    def recording_look(*args, **kwargs):
        reads.clear()
        recording.append(True)
        try:
            seen = look(*args, **kwargs)
        finally:
            recording.clear()
        looked.append(sorted(reads))
        return seen

    open_image, look, looked = your_data.open_image, your_data.look, []
    monkeypatch.setattr(your_data, "open_image", recording_open)
    monkeypatch.setattr(your_data, "look", recording_look)
    out = tmp_path / "out"
    your_data.predict(run_dir, manifest, out, draws=1, verbose=0)

    with open(manifest, newline="") as f:
        names = [row["path"][:-4] for row in csv.DictReader(f)]
    assert len(looked) == len(names) == 8
    for n, (name, patches_read) in enumerate(zip(names, looked)):
        collection = valid(out / "overlays" / f"{n:04d}_{name}.geojson")
        annotations = [
            f
            for f in collection["features"]
            if f["properties"]["objectType"] == "annotation"
        ]
        # PNGs are read at level 0: the rectangles are the reads, exactly.
        rectangles = sorted(
            ((int(y0), int(x0)), (int(y1 - y0), int(x1 - x0)))
            for y0, x0, y1, x1 in map(rectangle, annotations)
        )
        assert len(rectangles) == 3 and rectangles == patches_read
        cells = [
            f
            for f in collection["features"]
            if f["properties"]["objectType"] == "detection"
        ]
        assert cells, "the attention grid"
        for cell in cells:
            top, left, bottom, right = rectangle(cell)
            assert 0 <= top < bottom <= 160 and 0 <= left < right <= 224
        tiff = out / "overlays" / f"{n:04d}_{name}_attention.tif"
        with tifffile.TiffFile(tiff) as tif:
            raster = tif.pages[0].asarray()
        assert raster.shape == (40, 56)  # the low view at 0.25
        described = read_heatmap_description(tiff)
        assert described["downsample"] == [4.0, 4.0]
        assert described["level0_shape"] == [160, 224]
        # The most attended cell is the hottest pixel of the TIFF.
        hottest = max(cells, key=lambda c: c["properties"]["measurements"]["attention"])
        top, left, _, _ = rectangle(hottest)
        assert raster[int(top) // 4, int(left) // 4] == pytest.approx(raster.max())

    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["unlabelled"] == 0
    assert evaluation["sampled"]["examples"] == 8
    assert evaluation["roc_auc_intervals"]["top_k"]["cases"]["units"] == 4
    assert "| per case (4) |" in (out / "evaluation.md").read_text()

    # Without labels: no evaluation (and none left from before).
    unlabelled = _manifest(
        tmp_path / "paths.csv", ["path"], [[manifest.parent / "image8.png"]]
    )
    your_data.predict(run_dir, unlabelled, out, draws=1, verbose=0)
    assert not (out / "evaluation.json").exists()
