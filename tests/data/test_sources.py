"""Host patch sources: arrays, memmaps, zarr, pyramidal TIFF, slides.

Every source must read exactly what ``extract_patches`` extracts from the
same data in memory (zeros outside the image), touch only the chunks or
tiles a patch overlaps, and fail with errors that name the file and the
problem.
"""

import importlib.util
import os
import threading
import time

import numpy as np
import pytest
from keras import ops

from ats.data import (
    ArraySource,
    PatchReadError,
    PatchSource,
    SlideSource,
    SourceError,
    TiffSource,
    get_source,
    read_many,
    read_threads,
    set_read_threads,
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
    decoded = []
    tile_array = tiff_module._TiledLevel.tile_array

    def logged_tile_array(self, row, column):
        decoded.append((self.level, row, column))
        return tile_array(self, row, column)

    monkeypatch.setattr(tiff_module._TiledLevel, "tile_array", logged_tile_array)
    source = TiffSource(pyramid, low_level=2)
    for corner, tiles in (
        ([5, 5], [(0, 0)]),
        ([100, 5], [(0, 0), (1, 0)]),
        ([100, 100], [(0, 0), (0, 1), (1, 0), (1, 1)]),
        ([-30, -30], [(0, 0)]),
        ([SIDE + 5, 0], []),
    ):
        decoded.clear()
        source.read([corner], (64, 64))
        assert decoded == [(0, *tile) for tile in tiles], corner


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


def corrupt_tile(path, level, index):
    """Overwrite the middle of tile ``index`` of ``level`` with junk bytes,
    leaving the file's structure (what opening checks) intact."""
    with tifffile.TiffFile(path) as tif:
        page = tif.series[0].levels[level].pages[0]
        offset, count = page.dataoffsets[index], page.databytecounts[index]
    with open(path, "r+b") as f:
        f.seek(offset + 10)
        f.write(b"\xff\x00" * ((count - 20) // 2))


@pytest.mark.parametrize("patch_level", [0, 1])
def test_a_damaged_tile_names_the_file_the_level_and_the_tile(
    tmp_path, image, patch_level
):
    path = write_pyramid(tmp_path / "corrupt.tif", image, compression="jpeg")
    # Level 0 has 4x4 tiles of 128, level 1 2x2: tile 3 is row 1, column 1.
    index = 5 if patch_level == 0 else 3
    corrupt_tile(path, patch_level, index)
    source = TiffSource(path, low_level=2, patch_level=patch_level)
    source.read([[0, 0]], (64, 64))  # the other tiles still read
    corner = (140, 150)
    tile = "row 1, column 1 of 4x4" if patch_level == 0 else "row 1, column 1 of 2x2"
    with pytest.raises(PatchReadError) as caught:
        source.read([[0, 0], list(corner)], (64, 64), threads=2)
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot read the patch")
    assert f"corner {corner}" in message
    assert (
        f"DamagedTileError: level {patch_level}, tile {index} ({tile} tiles" in message
    )
    assert "pixels rows 128 to 256, columns 128 to 256" in message


def test_a_damaged_tile_mid_training_names_the_slide(tmp_path, image):
    from ats.lazy import read_patches

    path = write_pyramid(tmp_path / "damaged.tif", image, compression="jpeg")
    corrupt_tile(path, 0, 5)
    good = TiffSource(write_pyramid(tmp_path / "good.tif", image), low_level=2)
    damaged = TiffSource(path, low_level=2)  # opens: its structure is intact
    refs = np.stack([good.reference(), damaged.reference()])
    corners = np.array([[[0, 0], [140, 150]], [[0, 0], [10, 10]]])
    patches = read_patches(refs, corners, (64, 64), 1, "float32")
    assert patches.shape == (2, 2, 64, 64, 1)
    corners[1, 1] = [200, 200]
    with pytest.raises(PatchReadError, match=r"damaged.tif.*level 0, tile 5 \(row 1"):
        read_patches(refs, corners, (64, 64), 1, "float32")


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


# --- reading on the thread pool ---------------------------------------------------


class _ConcurrencyProbe(PatchSource):
    """A source whose reads sleep and record how many run at once."""

    def __init__(self, thread_safe):
        super().__init__("probe", (64, 64, 1), (8, 8, 1), np.uint8)
        self.thread_safe = thread_safe
        self.running = 0
        self.most = 0
        self.count_lock = threading.Lock()

    def low(self):
        return np.zeros(self.low_shape, self.dtype)

    def _read(self, start, stop):
        with self.count_lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)
        with self.count_lock:
            self.running -= 1
        return np.full((stop[0] - start[0], stop[1] - start[1], 1), start[0], np.uint8)


@pytest.mark.parametrize("thread_safe", [False, True])
def test_only_thread_safe_sources_are_read_in_parallel(thread_safe):
    source = _ConcurrencyProbe(thread_safe)
    corners = [[8 * i, 0] for i in range(6)]
    patches = source.read(corners, (8, 8), threads=3)
    np.testing.assert_array_equal(patches[:, 0, 0, 0], [8 * i for i in range(6)])
    assert (source.most > 1) == thread_safe


def test_threaded_reads_equal_serial_reads(tmp_path, image):
    rgb = textured((SIDE, SIDE, 3), seed=3)
    path = write_pyramid(tmp_path / "rgb.tif", rgb, compression="jpeg")
    sources = [TiffSource(path, low_level=2), ArraySource(rgb, low=rgb[::4, ::4])]
    for library in ("tiffslide", "openslide"):
        if importlib.util.find_spec(library) is not None:
            sources.append(SlideSource(path, low_level=2, library=library))
    corners = np.random.default_rng(0).integers(-50, SIDE, (24, 2))
    for source in sources:
        serial = source.read(corners, (64, 64), threads=1)
        np.testing.assert_array_equal(source.read(corners, (64, 64), threads=3), serial)
    # Several sources at once: each request gets its own patches.
    batches = read_many([(s, corners) for s in sources], (64, 64), threads=2)
    for source, patches in zip(sources, batches):
        np.testing.assert_array_equal(
            patches, source.read(corners, (64, 64), threads=1)
        )


def test_read_threads_setting(monkeypatch):
    monkeypatch.setenv("ATS_READ_THREADS", "3")
    assert read_threads() == 3
    set_read_threads(1)
    assert read_threads() == 1
    set_read_threads(None)
    assert read_threads() == 3
    with pytest.raises(ValueError, match="threads"):
        set_read_threads(0)
    monkeypatch.setenv("ATS_READ_THREADS", "many")
    with pytest.raises(ValueError, match="ATS_READ_THREADS.*'many'"):
        read_threads()
