"""The heatmap and gallery pictures: valid PNGs of their documented size, with
the boxes, the mask and the patches where they belong."""

import numpy as np
import pytest
from PIL import Image

from ats.training.heatmaps import save_gallery, save_heatmap

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path):
    """The pixels of a PNG file, checked to be a valid PNG, as RGB uint8."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB")).astype(int)
    assert not list(path.parent.glob(".*.tmp"))  # written atomically
    return pixels


def thumbnail(channels, shape=(150, 200)):
    rows, columns = np.mgrid[0 : shape[0], 0 : shape[1]]
    gray = (rows / shape[0] + columns / shape[1]) / 2
    if channels == 1:
        return gray[..., None]
    return np.stack([gray, 1 - gray, np.full(shape, 0.3)], axis=-1)


def attention(shape=(15, 20), seed=0):
    a = np.random.default_rng(seed).random(shape)
    return a / a.sum()


@pytest.mark.parametrize("channels", [1, 3])
def test_heatmap_size_and_content(tmp_path, channels):
    path = tmp_path / "out" / "heatmap.png"
    written = save_heatmap(path, thumbnail(channels), attention(), None, size=400)
    assert written == path
    pixels = read_png(path)
    assert pixels.shape == (300, 400, 3)  # the longer side is `size`
    assert pixels.std() > 5  # not a blank canvas
    titled = save_heatmap(
        tmp_path / "titled.png", thumbnail(channels), attention(), None, title="t"
    )
    assert read_png(titled).shape == (600 + 28, 800, 3)
    # A tall thumbnail, the default size: 800 pixels high.
    tall = save_heatmap(
        tmp_path / "tall.png", thumbnail(channels, (400, 100)), attention(), None
    )
    assert read_png(tall).shape == (800, 200, 3)


@pytest.mark.parametrize("channels", [1, 3])
def test_heatmap_boxes_are_drawn_where_they_are(tmp_path, channels):
    image, a = thumbnail(channels), attention()
    plain = read_png(save_heatmap(tmp_path / "plain.png", image, a, None, size=400))
    # Thumbnail pixels [y0, x0, y1, x1]; drawn at 2x (200 -> 400 pixels).
    box = [40, 50, 90, 120]
    boxed = read_png(save_heatmap(tmp_path / "boxed.png", image, a, [box], size=400))
    changed = np.abs(boxed - plain).sum(axis=-1) > 30

    def near(y, x):
        return changed[y - 2 : y + 3, x - 2 : x + 3].any()

    # On each of the four edges, in the middle of the edge.
    assert near(80, 170) and near(180, 170)  # top and bottom
    assert near(130, 100) and near(130, 240)  # left and right
    # Inside (away from the number in the corner) and outside: unchanged.
    assert not changed[120:170, 130:230].any()
    assert not changed[:70].any() and not changed[190:].any()
    assert not changed[:, :90].any() and not changed[:, 250:].any()


def test_heatmap_attention_is_drawn_over_the_thumbnail(tmp_path):
    image = np.full((100, 100, 3), 0.5)
    peak = np.zeros((10, 10))
    peak[2, 7] = 1.0  # rows 20-30, columns 70-80 of the thumbnail
    pixels = read_png(save_heatmap(tmp_path / "a.png", image, peak, None, size=100))
    brightness = pixels.sum(axis=-1)
    assert brightness[25, 75] > brightness[75, 25] + 100
    # Where the attention is 0, the thumbnail as it is.
    np.testing.assert_allclose(pixels[40:, :60], 128, atol=1)
    # An extent puts the map on part of the thumbnail only.
    pixels = read_png(
        save_heatmap(
            tmp_path / "b.png", image, peak, None, extent=[0, 0, 50, 50], size=100
        )
    )
    brightness = pixels.sum(axis=-1)
    assert brightness[12, 37] > brightness[37, 12] + 100
    # Outside the extent, the plain thumbnail.
    np.testing.assert_allclose(pixels[60:, 60:], 128, atol=1)


@pytest.mark.parametrize("channels", [1, 3])
def test_heatmap_mask_contour(tmp_path, channels):
    image, a = thumbnail(channels), attention()
    mask = np.zeros((30, 40), bool)
    mask[10:20, 10:30] = True  # thumbnail rows 50-100, columns 50-150
    plain = read_png(save_heatmap(tmp_path / "plain.png", image, a, None, size=200))
    masked = read_png(
        save_heatmap(tmp_path / "masked.png", image, a, None, mask=mask, size=200)
    )
    changed = np.abs(masked - plain).sum(axis=-1) > 30
    assert changed[48:53, 60:140].any()  # the top of the contour
    assert not changed[60:90, 60:140].any()  # inside
    assert not changed[:40].any() and not changed[110:].any()  # outside
    # An empty or a full mask has no contour (and no warning).
    for constant in (np.zeros_like(mask), np.ones_like(mask)):
        same = read_png(
            save_heatmap(tmp_path / "c.png", image, a, None, mask=constant, size=200)
        )
        np.testing.assert_array_equal(same, plain)


def test_heatmap_checks_its_inputs(tmp_path):
    path = tmp_path / "h.png"
    image, a = thumbnail(3), attention()
    with pytest.raises(ValueError, match="thumbnail.*C = 1 \\(gray\\) or 3"):
        save_heatmap(path, np.zeros((10, 10, 4)), a, None)
    with pytest.raises(ValueError, match="attention"):
        save_heatmap(path, image, np.zeros((2, 2, 2)), None)
    with pytest.raises(ValueError, match="attention.*>= 0"):
        save_heatmap(path, image, -a, None)
    with pytest.raises(ValueError, match="boxes"):
        save_heatmap(path, image, a, [[1, 2, 3]])
    with pytest.raises(ValueError, match="mask"):
        save_heatmap(path, image, a, None, mask=np.zeros(5))
    with pytest.raises(ValueError, match="thumbnail.*finite"):
        save_heatmap(path, np.full((10, 10), np.nan), a, None)
    assert not path.exists()
    # Gray as (h, w), an all-zero attention and an empty list of boxes work.
    save_heatmap(path, image[..., 0], np.zeros((3, 3)), [], size=50)
    assert read_png(path).shape == (38, 50, 3)


@pytest.mark.parametrize("channels", [1, 3])
def test_gallery_shows_the_patches_at_full_resolution(tmp_path, channels):
    rng = np.random.default_rng(0)
    patches = rng.random((5, 40, 30, channels))
    path = tmp_path / "gallery" / "patches.png"
    assert save_gallery(path, patches, rng.random(5) / 100, title="g") == path
    pixels = read_png(path)
    # 3 columns of 64-pixel cells (patches narrower than a caption), 2 rows.
    assert pixels.shape == (28 + 2 * (40 + 16) + 3 * 6, 3 * 64 + 4 * 6, 3)
    for i, patch in enumerate(patches):
        row, column = divmod(i, 3)
        top = 28 + 6 + row * (56 + 6) + 16
        left = 6 + column * (64 + 6) + (64 - 30) // 2
        drawn = pixels[top : top + 40, left : left + 30]
        expected = np.broadcast_to(patch, (40, 30, 3)) * 255
        np.testing.assert_allclose(drawn, expected, atol=1.01)
    # The captions are drawn above the patches.
    assert (pixels[34:50, 6:70] < 128).any()


def test_gallery_size_of_large_patches(tmp_path):
    patches = np.random.default_rng(1).random((1, 120, 90))  # gray as (N, h, w)
    pixels = read_png(save_gallery(tmp_path / "g.png", patches, [0.5]))
    assert pixels.shape == (120 + 16 + 2 * 6, 90 + 2 * 6, 3)


def test_gallery_checks_its_inputs(tmp_path):
    path = tmp_path / "g.png"
    patches = np.zeros((3, 8, 8, 1))
    with pytest.raises(ValueError, match="values.*3 finite numbers"):
        save_gallery(path, patches, [0.1, 0.2])
    with pytest.raises(ValueError, match="values"):
        save_gallery(path, patches, [0.1, 0.2, np.nan])
    with pytest.raises(ValueError, match="patches"):
        save_gallery(path, np.zeros((3, 8, 8, 2)), [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="patches"):
        save_gallery(path, np.zeros((0, 8, 8, 1)), [])
    assert not path.exists()
