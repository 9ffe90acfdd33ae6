"""Host patch sources: arrays, memmaps, zarr, pyramidal TIFF, slides.

Every source must read exactly what ``extract_patches`` extracts from the
same data in memory (zeros outside the image), touch only the chunks or
tiles a patch overlaps, and fail with errors that name the file and the
problem.
"""

import importlib.util
import os

import numpy as np
import pytest
from keras import ops

from ats.data import (
    ArraySource,
    PatchReadError,
    SlideSource,
    SourceError,
    TiffSource,
    get_source,
)
from ats.data import tiff as tiff_module
from ats.ops import extract_patches

tifffile = pytest.importorskip(
    "tifffile", reason="the gigapixel tests need tifffile (the [gigapixel] extra)"
)
zarr = pytest.importorskip("zarr", reason="the gigapixel tests need zarr")

SIDE, TILE = 512, 128
# Patches inside, overhanging each border, and entirely outside the image.
CORNERS = [
    [0, 0],
    [-20, -30],
    [500, 490],
    [100, 140],
    [-200, 10],
    [384, 128],
    [600, 600],
]


def reference_patches(image, corners, size):
    """What a source must return: ``extract_patches`` on the whole image,
    and zeros for patches entirely outside it."""
    corners = np.asarray(corners)
    spatial = np.asarray(image.shape[:-1])
    outside = np.any((corners + size <= 0) | (corners >= spatial), axis=1)
    # Entirely outside patches are compared with zeros: with JAX,
    # extract_patches clamps corners further out than a patch size.
    inside_corners = np.where(outside[:, None], 0, corners)
    patches = ops.convert_to_numpy(
        extract_patches(
            image[None], inside_corners[None], size, data_format="channels_last"
        )
    )[0]
    patches[outside] = 0
    return patches


def textured(shape, seed=0):
    """A smooth uint8 image (compresses well, survives JPEG roughly)."""
    rng = np.random.default_rng(seed)
    return rng.integers(1, 255, size=shape).astype(np.uint8)


def write_pyramid(path, image, levels=3, compression="zlib", subifds=False, tile=TILE):
    """A pyramidal tiled TIFF, halving the size at each level."""
    options = dict(
        tile=(tile, tile),
        compression=compression,
        photometric="rgb" if image.ndim == 3 else "minisblack",
    )
    with tifffile.TiffWriter(path, bigtiff=True) as writer:
        writer.write(image, subifds=levels - 1 if subifds else None, **options)
        for level in range(1, levels):
            step = 2**level
            writer.write(image[::step, ::step], subfiletype=1, **options)
    return path


@pytest.fixture(scope="module")
def image():
    return textured((SIDE, SIDE))


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory, image):
    return write_pyramid(tmp_path_factory.mktemp("tiff") / "slide.tif", image)


@pytest.mark.parametrize("spatial", [(300,), (40, 50), (12, 14, 16)])
def test_array_source_matches_extract_patches(spatial):
    rng = np.random.default_rng(1)
    image = rng.random((*spatial, 2)).astype("float32")
    ndim = len(spatial)
    size = tuple(max(2, s // 3) for s in spatial)
    corners = rng.integers(-10, max(spatial), size=(20, ndim))
    source = ArraySource(image, low=image[(slice(None, None, 2),) * ndim])
    np.testing.assert_array_equal(
        source.read(corners, size), reference_patches(image, corners, size)
    )


def test_memmap_source(tmp_path, image):
    np.save(tmp_path / "image.npy", image[..., None])
    high = np.load(tmp_path / "image.npy", mmap_mode="r")
    source = ArraySource(high, low=image[::4, ::4, None])
    assert str(tmp_path / "image.npy") in source.name
    np.testing.assert_array_equal(
        source.read(CORNERS, (64, 48)),
        reference_patches(image[..., None], CORNERS, (64, 48)),
    )


def test_zarr_source_reads_only_the_chunks_a_patch_touches(image):
    store = zarr.storage.LoggingStore(zarr.storage.MemoryStore())
    array = zarr.create_array(
        store, shape=(SIDE, SIDE, 1), chunks=(TILE, TILE, 1), dtype="uint8"
    )
    array[...] = image[..., None]
    source = ArraySource(array, low=image[::4, ::4, None])
    np.testing.assert_array_equal(
        source.read(CORNERS, (64, 64)),
        reference_patches(image[..., None], CORNERS, (64, 64)),
    )
    for corner, chunks in (
        ([10, 10], 1),
        ([100, 10], 2),
        ([100, 100], 4),
        ([-40, -40], 1),
        ([SIDE, 0], 0),
    ):
        store.counter.clear()
        source.read([corner], (64, 64))
        assert store.counter["get"] == chunks, corner


@pytest.mark.parametrize(
    "compression,subifds", [("zlib", False), ("zlib", True), ("jpeg", False)]
)
def test_tiff_source_levels_and_patches(tmp_path, image, compression, subifds):
    path = write_pyramid(
        tmp_path / "slide.tif",
        image,
        levels=3,
        compression=compression,
        subifds=subifds,
    )
    source = TiffSource(path, low_level=2, scale=0.25)
    level0 = tifffile.imread(path, level=0)[..., None]
    level2 = tifffile.imread(path, level=2)[..., None]
    assert source.shape == (SIDE, SIDE, 1) and source.dtype == np.uint8
    np.testing.assert_array_equal(source.low(), level2)
    np.testing.assert_array_equal(
        source.read(CORNERS, (64, 96)), reference_patches(level0, CORNERS, (64, 96))
    )
    source.close()


def test_tiff_patch_level_and_rgb(tmp_path):
    image = textured((SIDE, SIDE, 3))
    path = write_pyramid(tmp_path / "rgb.tif", image, levels=3)
    source = TiffSource(path, low_level=2, patch_level=1, scale=0.5)
    level1 = tifffile.imread(path, level=1)
    assert source.shape == (SIDE // 2, SIDE // 2, 3)
    assert source.low().shape == (SIDE // 4, SIDE // 4, 3)
    np.testing.assert_array_equal(
        source.read(CORNERS, (32, 32)), reference_patches(level1, CORNERS, (32, 32))
    )


def test_tiff_source_reads_only_the_tiles_a_patch_touches(monkeypatch, pyramid):
    stores = {}

    def logged_level_array(zarr_module, series, level):
        stores[level] = zarr_module.storage.LoggingStore(series.aszarr(level=level))
        return zarr_module.open(stores[level], mode="r")

    monkeypatch.setattr(tiff_module, "_level_array", logged_level_array)
    source = TiffSource(pyramid, low_level=2)
    for corner, tiles in (
        ([5, 5], 1),
        ([100, 5], 2),
        ([100, 100], 4),
        ([-30, -30], 1),
        ([SIDE + 5, 0], 0),
    ):
        stores[0].counter.clear()
        source.read([corner], (64, 64))
        assert stores[0].counter["get"] == tiles, corner


def test_tiff_missing_file(tmp_path):
    path = tmp_path / "nowhere.tif"
    with pytest.raises(FileNotFoundError, match="nowhere.tif"):
        TiffSource(path, low_level=1)


def test_tiff_not_a_tiff(tmp_path):
    path = tmp_path / "text.tif"
    path.write_bytes(b"this is not a TIFF file at all" * 10)
    with pytest.raises(SourceError, match="text.tif.*not a readable TIFF"):
        TiffSource(path, low_level=1)


def test_tiff_truncated(tmp_path, pyramid):
    data = pyramid.read_bytes()
    for fraction in (0.3, 0.7, 0.99):
        path = tmp_path / f"truncated{fraction}.tif"
        path.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(
            SourceError, match=f"truncated{fraction}.tif.*(truncated|corrupt|level)"
        ):
            TiffSource(path, low_level=2)


def test_tiff_missing_level(pyramid):
    with pytest.raises(SourceError, match=r"slide.tif.*3 level.*low_level`=5"):
        TiffSource(pyramid, low_level=5)


def test_tiff_level_shape_does_not_match_the_scale(pyramid):
    with pytest.raises(
        SourceError,
        match=r"slide.tif.*level 2 has shape \(128, 128\).*"
        r"scale 0.125",
    ):
        TiffSource(pyramid, low_level=2, scale=0.125)


def test_tiff_in_strips_is_refused(tmp_path, image):
    path = tmp_path / "strips.tif"
    tifffile.imwrite(path, image)
    with pytest.raises(SourceError, match="strips.tif.*not tiles"):
        TiffSource(path, low_level=0)


def test_patch_larger_than_the_slide(pyramid):
    source = TiffSource(pyramid, low_level=2)
    with pytest.raises(
        SourceError,
        match=r"slide.tif: `patch_size` must be at most .*, got \(600, 64\)",
    ):
        source.check_patch_size((600, 64))


def test_corrupt_tile_names_the_file_and_the_position(tmp_path, image):
    path = write_pyramid(tmp_path / "corrupt.tif", image, compression="jpeg")
    with tifffile.TiffFile(path) as tif:
        page = tif.series[0].levels[0].keyframe
        offset, count = page.dataoffsets[5], page.databytecounts[5]
    with open(path, "r+b") as f:  # tile 5 is row 1, column 1 of 4x4 tiles
        f.seek(offset + 10)
        f.write(b"\xff\x00" * ((count - 20) // 2))
    source = TiffSource(path, low_level=2)
    source.read([[0, 0]], (64, 64))  # other tiles still read
    with pytest.raises(PatchReadError, match=r"corrupt.tif.*corner \(140, 150\)"):
        source.read([[0, 0], [140, 150]], (64, 64))


def test_closed_source_is_gone(pyramid):
    source = TiffSource(pyramid, low_level=2)
    source_id = source.id
    assert get_source(source_id) is source
    source.close()
    with pytest.raises(LookupError, match=f"id {source_id}"):
        get_source(source_id)


@pytest.mark.parametrize(
    "library,package", [("tiffslide", "tiffslide"), ("openslide", "openslide")]
)
def test_slide_source(pyramid, image, library, package):
    if importlib.util.find_spec(package) is None:
        pytest.skip(
            f"SlideSource(library={library!r}) needs the optional package {package!r}"
        )
    source = SlideSource(pyramid, low_level=1, scale=0.5, library=library)
    channels = 1 if library == "tiffslide" else 3
    assert source.shape == (SIDE, SIDE, channels)
    level0 = np.repeat(image[..., None], channels, axis=-1)
    level1 = np.repeat(tifffile.imread(pyramid, level=1)[..., None], channels, axis=-1)
    np.testing.assert_array_equal(source.low(), level1)
    np.testing.assert_array_equal(
        source.read(CORNERS, (64, 96)), reference_patches(level0, CORNERS, (64, 96))
    )
    source.close()


@pytest.mark.skipif(
    importlib.util.find_spec("tiffslide") is None,
    reason="SlideSource's default library needs the optional package 'tiffslide'",
)
def test_slide_source_bad_input(tmp_path, pyramid):
    with pytest.raises(FileNotFoundError, match="nowhere.svs"):
        SlideSource(tmp_path / "nowhere.svs", low_level=1)
    junk = tmp_path / "junk.svs"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(SourceError, match="junk.svs.*cannot open"):
        SlideSource(junk, low_level=1)
    with pytest.raises(SourceError, match=r"slide.tif.*low_level`=7"):
        SlideSource(pyramid, low_level=7)
    with pytest.raises(SourceError, match=r"slide.tif.*level 1 has shape"):
        SlideSource(pyramid, low_level=1, scale=0.3)
    with pytest.raises(ValueError, match="library"):
        SlideSource(pyramid, low_level=1, library="bioformats")
