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
