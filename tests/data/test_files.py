"""Image files as sources of float32 values in [0, 1], any format and size.

Every format must give the stored values divided by the dtype's maximum at
full resolution (patch reads equal the array's windows), a low view of
``max(1, round(side * low_scale))`` per axis from a pyramid level when the
file has one or else an area-averaged copy, cached so that a second open
hits the cache and a changed file is never served stale.
"""

import os
import shutil

import numpy as np
import pytest

from ats.data import ImageInfo, SourceError, open_image, probe_image
from ats.data import files as files_module

PIL = pytest.importorskip("PIL", reason="the file tests need Pillow")
from PIL import Image  # noqa: E402

tifffile = pytest.importorskip("tifffile", reason="the TIFF tests need tifffile")
zarr = pytest.importorskip("zarr", reason="the zarr tests need zarr")

RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 256, (48, 72, 3), dtype=np.uint8)
CORNERS = [[0, 0], [10, 20], [-5, -7], [40, 66]]


def window(array, corner, size):
    """What ``read`` returns for one patch: zeros outside the image."""
    out = np.zeros((*size, array.shape[-1]), array.dtype)
    y, x = corner
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + size[0], array.shape[0]), min(x + size[1], array.shape[1])
    if y1 > y0 and x1 > x0:
        out[y0 - y : y1 - y, x0 - x : x1 - x] = array[y0:y1, x0:x1]
    return out


def assert_reads(source, expected, size=(16, 16)):
    patches = source.read(CORNERS, size)
    assert patches.dtype == np.float32
    for patch, corner in zip(patches, CORNERS):
        np.testing.assert_allclose(patch, window(expected, corner, size), atol=1e-6)


def block_mean(array, factor):
    h, w, c = array.shape
    return array.reshape(h // factor, factor, w // factor, factor, c).mean(axis=(1, 3))


@pytest.mark.parametrize(
    "mode, channels", [("L", 1), ("RGB", 3), ("RGBA", 3), ("P", 3)]
)
def test_png_8_bit_modes(tmp_path, mode, channels):
    path = str(tmp_path / f"image_{mode}.png")
    image = Image.fromarray(IMAGE)
    if mode == "RGBA":
        image = image.convert("RGBA")
    elif mode != "RGB":
        image = image.convert(mode)
    image.save(path)
    expected = np.asarray(image.convert("L" if mode == "L" else "RGB"))
    expected = expected.reshape(48, 72, channels) / 255.0
    source = open_image(path, low_scale=0.5)
    assert source.shape == (48, 72, channels)
    assert source.low().shape == (24, 36, channels)
    assert source.low().dtype == np.float32
    np.testing.assert_allclose(source.low(), block_mean(expected, 2), atol=1e-6)
    assert_reads(source, expected)
    info = probe_image(path)
    assert info == ImageInfo((48, 72, channels), np.dtype("uint8"), "png", [(48, 72)])


def test_png_16_bit_is_divided_by_65535(tmp_path):
    path = str(tmp_path / "deep.png")
    array = RNG.integers(0, 65536, (40, 30), dtype=np.uint16)
    Image.fromarray(array).save(path)
    source = open_image(path, low_scale=0.1)
    assert probe_image(path).dtype == np.uint16
    assert source.shape == (40, 30, 1) and source.low_shape == (4, 3, 1)
    expected = array[..., None] / 65535.0
    assert_reads(source, expected)
    np.testing.assert_allclose(source.low(), block_mean(expected, 10), atol=1e-6)
    assert source.low().min() >= 0.0 and source.low().max() <= 1.0


def test_jpeg(tmp_path):
    path = str(tmp_path / "photo.jpeg")
    smooth = np.linspace(0, 255, 72)[None, :, None] * np.ones((48, 1, 3))
    Image.fromarray(smooth.astype(np.uint8)).save(path, quality=95)
    source = open_image(path, low_scale=0.25)
    assert source.shape == (48, 72, 3) and source.low_shape == (12, 18, 3)
    assert probe_image(path).format == "jpeg"
    np.testing.assert_allclose(
        source.read([[0, 0]], (48, 72))[0], smooth / 255, atol=0.03
    )


@pytest.mark.parametrize("scale, low", [(0.3, (14, 22)), (0.01, (1, 1)), (1, (48, 72))])
def test_low_view_shape_rounds_each_side(tmp_path, scale, low):
    path = str(tmp_path / "image.npy")
    np.save(path, IMAGE)
    assert open_image(path, scale).low_shape == (*low, 3)


@pytest.mark.parametrize("scale", [0, -0.5, 1.5])
def test_low_scale_out_of_range(tmp_path, scale):
    path = str(tmp_path / "image.npy")
    np.save(path, IMAGE)
    with pytest.raises(ValueError, match="low_scale"):
        open_image(path, scale)


def test_plain_tiff_in_strips(tmp_path):
    path = str(tmp_path / "plain.tif")
    tifffile.imwrite(path, IMAGE)  # strips, no pyramid
    source = open_image(path, 0.5)
    assert source.low_from == "computed"
    assert probe_image(path).levels == [(48, 72)]
    assert_reads(source, IMAGE / 255.0)
    np.testing.assert_allclose(source.low(), block_mean(IMAGE / 255.0, 2), atol=1e-6)
    source.close()


def write_pyramid(path, image):
    with tifffile.TiffWriter(path) as tif:
        tif.write(image, tile=(32, 32), subifds=1)
        tif.write(image[::4, ::4], tile=(32, 32), subfiletype=1)


@pytest.mark.parametrize("name", ["pyramid.tif", "pyramid.ome.tif", "slide.svs"])
def test_pyramidal_tiff_reads_low_view_from_a_level(tmp_path, name):
    image = RNG.integers(0, 256, (128, 192, 3), dtype=np.uint8)
    path = str(tmp_path / name)
    write_pyramid(path, image)
    info = probe_image(path)
    assert info.levels == [(128, 192), (32, 48)] and info.shape == (128, 192, 3)
    exact = open_image(path, 0.25)  # level 1 exactly
    assert exact.low_from == "pyramid level 1"
    np.testing.assert_allclose(exact.low(), image[::4, ::4] / 255.0, atol=1e-6)
    assert_reads(exact, image / 255.0)
    coarser = open_image(path, 0.125)  # level 1 area-averaged to 16 x 24
    assert coarser.low_from == "pyramid level 1"
    expected = block_mean(image[::4, ::4] / 255.0, 2)
    np.testing.assert_allclose(coarser.low(), expected, atol=1e-6)
    finer = open_image(path, 0.5)  # level 1 is too coarse: from level 0
    assert finer.low_from == "computed"
    np.testing.assert_allclose(finer.low(), block_mean(image / 255.0, 2), atol=1e-6)
    for source in (exact, coarser, finer):
        source.close()


def test_openslide_format_goes_through_slide_source(tmp_path, monkeypatch):
    pytest.importorskip("tiffslide", reason="needs tiffslide")
    image = RNG.integers(0, 256, (128, 192, 3), dtype=np.uint8)
    path = str(tmp_path / "slide.scn")
    write_pyramid(path, image)
    monkeypatch.setattr(files_module, "_slide_library", lambda: "tiffslide")
    source = open_image(path, 0.25)
    assert probe_image(path).format == "slide"
    assert source.low_from == "pyramid level 1"
    assert_reads(source, image / 255.0)
    source.close()


def test_npy_is_memory_mapped_and_2d_gets_a_channel(tmp_path):
    path = str(tmp_path / "gray.npy")
    array = RNG.integers(0, 65536, (40, 60), dtype=np.uint16)
    np.save(path, array)
    source = open_image(path, 0.5)
    assert isinstance(source.inner._high, np.memmap)
    assert source.shape == (40, 60, 1)
    assert_reads(source, array[..., None] / 65535.0)


def test_float_npy_must_be_in_unit_range(tmp_path):
    good, bad = str(tmp_path / "good.npy"), str(tmp_path / "bad.npy")
    np.save(good, np.full((20, 20, 2), 0.5, np.float32))
    np.save(bad, np.full((20, 20, 2), 3.0, np.float32))
    assert float(open_image(good, 0.5).low().max()) == 0.5
    with pytest.raises(SourceError, match="bad.npy.*\\[0, 1\\]"):
        open_image(bad, 0.5)


def test_signed_integers_are_refused(tmp_path):
    path = str(tmp_path / "signed.npy")
    np.save(path, np.zeros((20, 20), np.int16))
    with pytest.raises(SourceError, match="signed.npy.*int16"):
        open_image(path, 0.5)


def test_zarr_directory(tmp_path):
    path = str(tmp_path / "image.zarr")
    stored = zarr.open_array(
        path, mode="w", shape=IMAGE.shape, chunks=(16, 16, 3), dtype="uint8"
    )
    stored[...] = IMAGE
    info = probe_image(path)
    assert info.format == "zarr" and info.shape == IMAGE.shape
    source = open_image(path, 0.5)
    assert_reads(source, IMAGE / 255.0)
    np.testing.assert_allclose(source.low(), block_mean(IMAGE / 255.0, 2), atol=1e-6)


def test_unknown_format_names_the_file_and_the_formats(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    for function in (probe_image, lambda p: open_image(p, 0.5)):
        with pytest.raises(SourceError, match="notes.txt.*'.txt'.*png.*jpeg.*tiff"):
            function(str(path))


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.png"):
        open_image(str(tmp_path / "absent.png"), 0.5)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a png at all")
    with pytest.raises(SourceError, match="corrupt.png"):
        open_image(str(corrupt), 0.5)
    truncated = tmp_path / "truncated.png"
    Image.fromarray(IMAGE).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(SourceError, match="truncated.png"):
        open_image(str(truncated), 0.5)


def test_cache_is_hit_on_the_second_open(tmp_path, monkeypatch):
    path, cache = str(tmp_path / "image.png"), str(tmp_path / "cache")
    Image.fromarray(IMAGE).save(path)
    first = open_image(path, 0.5, cache_dir=cache)
    assert first.low_from == "computed"
    (cached,) = os.listdir(cache)
    assert cached.endswith(".npz")
    with np.load(os.path.join(cache, cached), allow_pickle=False) as data:
        assert list(data) == ["low"]

    def fail(*args, **kwargs):
        raise AssertionError("the low view was computed again")

    monkeypatch.setattr(files_module, "_downscale", fail)
    second = open_image(path, 0.5, cache_dir=cache)
    assert second.low_from == "cache"
    np.testing.assert_array_equal(second.low(), first.low())
    # Another low shape is another cache entry.
    monkeypatch.undo()
    assert open_image(path, 0.25, cache_dir=cache).low_from == "computed"
    assert len(os.listdir(cache)) == 2


def test_a_changed_file_is_never_served_stale(tmp_path):
    path, cache = str(tmp_path / "image.npy"), str(tmp_path / "cache")
    np.save(path, np.zeros((40, 40), np.uint8))
    stat = os.stat(path)
    assert float(open_image(path, 0.5, cache_dir=cache).low().max()) == 0.0
    # Same size, same modification time: only the content differs.
    np.save(path, np.full((40, 40), 255, np.uint8))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(path).st_size == stat.st_size
    changed = open_image(path, 0.5, cache_dir=cache)
    assert changed.low_from == "computed"
    assert float(changed.low().min()) == 1.0


def test_a_copied_file_has_its_own_entry(tmp_path):
    cache = str(tmp_path / "cache")
    first, second = str(tmp_path / "a.npy"), str(tmp_path / "b.npy")
    np.save(first, IMAGE)
    shutil.copy(first, second)
    open_image(first, 0.5, cache_dir=cache)
    assert open_image(second, 0.5, cache_dir=cache).low_from == "computed"


def test_area_resize_keeps_the_mean_for_any_factor():
    image = RNG.random((37, 53, 2))
    low = files_module.area_resize(image, (10, 11))
    assert low.shape == (10, 11, 2)
    np.testing.assert_allclose(low.mean(axis=(0, 1)), image.mean(axis=(0, 1)))


def test_downscale_in_bands_equals_whole(tmp_path):
    image = RNG.random((90, 70, 3))

    def read(start, stop):
        return image[start[0] : stop[0], start[1] : stop[1]]

    banded = files_module._downscale(read, (90, 70), 3, (13, 9), band_bytes=4000)
    whole = files_module.area_resize(image, (13, 9))
    np.testing.assert_allclose(banded, whole, atol=1e-12)


def test_png_larger_than_the_decoded_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(files_module, "DECODED_CACHE_BYTES", 100)
    path = str(tmp_path / "large.png")
    Image.fromarray(IMAGE).save(path)
    source = open_image(path, 0.5)
    assert_reads(source, IMAGE / 255.0)
    np.testing.assert_allclose(source.low(), block_mean(IMAGE / 255.0, 2), atol=1e-6)
