"""Foreground masks on the low view: Otsu with a little morphology, files."""

import numpy as np
import pytest

from ats.data import SourceError, load_mask, otsu_mask
from ats.data.masks import otsu_threshold

PIL = pytest.importorskip("PIL", reason="the mask tests need Pillow")
from PIL import Image  # noqa: E402


def disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


@pytest.mark.parametrize("background, foreground", [(0.95, 0.4), (0.05, 0.7)])
def test_otsu_finds_the_object_whatever_the_background(background, foreground):
    rng = np.random.default_rng(0)
    truth = disc((60, 80), (30, 40), 18)
    low = np.where(truth, foreground, background)[..., None] * np.ones(3)
    low = np.clip(low + rng.normal(0, 0.03, low.shape), 0, 1)
    mask = otsu_mask(low)
    assert mask.dtype == bool and mask.shape == (60, 80)
    assert np.mean(mask == truth) > 0.98
    assert not mask[0, 0] and mask[30, 40]


def test_otsu_morphology_removes_specks_and_fills_pinholes():
    low = np.ones((40, 40))
    low[10:30, 10:30] = 0.2  # the object
    low[2, 35] = 0.2  # an isolated dark speck in the background
    low[20, 20] = 1.0  # a bright pinhole in the object
    mask = otsu_mask(low)
    assert not mask[2, 35]
    assert mask[20, 20]
    assert mask[10:30, 10:30].all() and mask.sum() == 400


def test_otsu_keeps_a_tiny_object_that_opening_would_erase():
    low = np.ones((30, 30))
    low[15, 15] = 0.0
    mask = otsu_mask(low)
    assert mask.sum() == 1 and mask[15, 15]


def test_otsu_of_a_constant_image_is_everything():
    assert otsu_mask(np.full((8, 9, 3), 0.5)).all()


def test_otsu_threshold_splits_two_modes():
    values = np.concatenate([np.full(100, 0.2), np.full(50, 0.8)])
    threshold = otsu_threshold(values)
    assert 0.2 <= threshold < 0.8


def test_otsu_refuses_bad_rank():
    with pytest.raises(ValueError, match="otsu_mask.*shape"):
        otsu_mask(np.zeros((2, 3, 4, 5)))


def test_load_png_mask_nearest_resized(tmp_path):
    full = np.zeros((300, 400), np.uint8)
    full[:, :100] = 255  # the left quarter
    path = str(tmp_path / "mask.png")
    Image.fromarray(full).save(path)
    mask = load_mask(path, (30, 40))
    assert mask.dtype == bool and mask.shape == (30, 40)
    assert mask[:, :10].all() and not mask[:, 10:].any()


def test_load_rgb_mask_any_channel_nonzero(tmp_path):
    full = np.zeros((20, 20, 3), np.uint8)
    full[:10, :, 2] = 1  # foreground in the blue channel only
    path = str(tmp_path / "mask.png")
    Image.fromarray(full).save(path)
    mask = load_mask(path, (20, 20))
    assert mask[:10].all() and not mask[10:].any()


def test_load_npy_mask_upscaled(tmp_path):
    path = str(tmp_path / "mask.npy")
    np.save(path, np.array([[1, 0], [0, 1]], bool))
    mask = load_mask(path, (4, 6))
    expected = np.array([[1] * 3 + [0] * 3] * 2 + [[0] * 3 + [1] * 3] * 2, bool)
    np.testing.assert_array_equal(mask, expected)


def test_load_mask_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.png"):
        load_mask(str(tmp_path / "absent.png"), (4, 4))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nonsense")
    with pytest.raises(SourceError, match="bad.png"):
        load_mask(str(bad), (4, 4))
    cube = str(tmp_path / "cube.npy")
    np.save(cube, np.zeros((2, 2, 2, 2)))
    with pytest.raises(SourceError, match="cube.npy"):
        load_mask(cube, (4, 4))


# --- H&E tissue ------------------------------------------------------------------

EOSIN = (0.92, 0.62, 0.80)  # pink
HEMATOXYLIN = (0.45, 0.28, 0.62)  # purple
BLUE_INK = (0.15, 0.30, 0.75)
GREEN_INK = (0.25, 0.62, 0.35)


def he_slide(rng, shape=(120, 160)):
    """A low view of an H&E slide: two pieces of pink tissue dotted with
    purple nuclei on white glass, a blue pen stroke crossing one of them,
    a green pen circle on the glass, black dots. Returns ``(rgb, tissue,
    pen)``, the last two the true masks."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    tissue = disc(shape, (60, 50), 35) | (
        ((yy - 70) / 30) ** 2 + ((xx - 120) / 22) ** 2 <= 1
    )
    rgb = np.ones((*shape, 3)) * 0.95
    rgb[tissue] = EOSIN
    nuclei = tissue & (rng.random(shape) < 0.3)
    rgb[nuclei] = HEMATOXYLIN
    blue = (np.abs(yy - 0.6 * xx - 10) < 2.5) & (xx > 20) & (xx < 90)
    ring = np.abs(np.hypot(yy - 20, xx - 130) - 12) < 1.5
    dots = disc(shape, (110, 10), 2) | disc(shape, (100, 150), 2)
    rgb[blue], rgb[ring], rgb[dots] = BLUE_INK, GREEN_INK, (0.05, 0.05, 0.08)
    rgb = np.clip(rgb + rng.normal(0, 0.02, rgb.shape), 0, 1)
    pen = blue | ring | dots
    return rgb, tissue & ~pen, pen


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_tissue_mask_finds_tissue_without_pen_or_background(dtype):
    from ats.data.masks import tissue_mask

    rgb, truth, pen = he_slide(np.random.default_rng(0))
    low = rgb.astype(dtype) if dtype == "float32" else np.round(rgb * 255).astype(dtype)
    mask = tissue_mask(low)
    assert mask.dtype == bool and mask.shape == truth.shape
    assert iou(mask, truth) > 0.9
    assert not (mask & pen).any()  # no ink, even where it crosses tissue
    background = ~truth & ~pen
    assert (mask & background).sum() < 0.02 * background.sum()
    # Otsu on the gray level takes the ink for the object too.
    assert (otsu_mask(low) & pen).sum() > 0.5 * pen.sum()


def test_tissue_mask_morphology_removes_specks_and_fills_small_holes():
    from ats.data.masks import tissue_mask

    low = np.ones((200, 200, 3)) * 0.95
    low[50:150, 50:150] = EOSIN
    low[95:100, 95:100] = 0.95  # a 5x5 hole of glass in the tissue
    low[10:13, 10:13] = EOSIN  # a 3x3 speck of stain on the glass
    mask = tissue_mask(low, min_tissue=1e-3, max_hole=1e-3)
    assert mask[95:100, 95:100].all()
    assert not mask[10:13, 10:13].any()
    np.testing.assert_array_equal(mask[50:150, 50:150], True)
    assert mask.sum() == 100 * 100
    big_hole = low.copy()
    big_hole[70:130, 70:130] = 0.95  # larger than max_hole: glass, kept out
    assert not tissue_mask(big_hole, max_hole=1e-3)[100, 100]


def test_tissue_mask_of_blank_glass_is_empty_and_gray_images_are_refused():
    from ats.data.masks import tissue_mask

    glass = np.clip(0.94 + np.random.default_rng(0).normal(0, 0.01, (50, 50, 3)), 0, 1)
    assert not tissue_mask(glass).any()
    assert not tissue_mask(np.zeros((8, 8, 3))).any()  # black: dark, no NaN
    with pytest.raises(ValueError, match="RGB"):
        tissue_mask(np.ones((20, 20, 1)))


# --- GeoJSON annotations ---------------------------------------------------------


def square(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def test_geojson_polygons_land_where_they_are():
    from ats.data.masks import geojson_mask

    # A 10,000 x 20,000 slide (level 0) seen as a 100 x 200 low view: a
    # level-0 pixel (x, y) is low pixel (y / 100, x / 100).
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",  # x 2,000-6,000, y 1,000-4,000, a hole
                    "coordinates": [
                        square(2000, 1000, 6000, 4000),
                        square(3000, 2000, 4000, 3000),
                    ],
                },
                "properties": {"objectType": "annotation"},
            },
            {
                "type": "Feature",
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": [
                        [square(10000, 5000, 12000, 7000)],
                        [square(15000, 8000, 16000, 9500)],
                    ],
                },
            },
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]}},
        ],
    }
    truth = np.zeros((100, 200), bool)
    truth[10:40, 20:60] = True
    truth[20:30, 30:40] = False
    truth[50:70, 100:120] = True
    truth[80:95, 150:160] = True
    mask = geojson_mask(collection, (100, 200), (10000, 20000))
    np.testing.assert_array_equal(mask, truth)
    # QuPath's older export: a bare list of features; a non-square low view.
    coarse = geojson_mask(collection["features"][:1], (50, 40), (10000, 20000))
    assert coarse[5:20, 4:12].sum() > 0.7 * 15 * 8 and not coarse[30:, 20:].any()


def test_load_mask_reads_geojson_files_and_reports_bad_ones(tmp_path):
    import json

    path = tmp_path / "annotations.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [square(0, 0, 500, 1000)],
                },
            }
        )
    )
    mask = load_mask(path, (40, 40), level0_shape=(2000, 2000))
    assert mask[:20, :10].all() and mask.sum() == 200
    with pytest.raises(SourceError, match="level0_shape"):
        load_mask(path, (40, 40))
    points = tmp_path / "points.json"
    points.write_text('{"type": "Point", "coordinates": [1, 2]}')
    with pytest.raises(SourceError, match="no Polygon or MultiPolygon"):
        load_mask(points, (40, 40), level0_shape=(100, 100))
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "Polygon", "coordinates": [[["a", 1]]]}')
    with pytest.raises(SourceError, match="not a usable GeoJSON"):
        load_mask(broken, (40, 40), level0_shape=(100, 100))
