"""Physical resolution: microns per pixel from slide metadata, and patches of
the same physical size whatever the magnification a slide was scanned at.

The slides are written here with tifffile: the same content at 0.25 and 0.5
microns per pixel, as a generic pyramidal TIFF with resolution tags, an
SVS-style TIFF with an Aperio description, an OME-TIFF and (read through
tiffslide) an OpenSlide-format file.
"""

import shutil

import numpy as np
import pytest

from ats.data import (
    ManifestError,
    SlideSource,
    SourceError,
    check_manifest,
    open_image,
)
from ats.data import files as files_module
from ats.data.manifest import read_manifest
from ats.data.resolution import (
    aperio_mpp,
    choose_level,
    level_mpps,
    ome_mpp,
    property_mpp,
    resized_shape,
    resolution_tag_mpp,
    slide_mpp,
)

tifffile = pytest.importorskip("tifffile", reason="the slide tests need tifffile")
pytest.importorskip("zarr", reason="the slide tests need zarr")

APERIO = (
    "Aperio Image Library v12.0.15 \r\n{w}x{h} [0,0 {w}x{h}] (256x256) RGB"
    "|AppMag = 20|MPP = {mpp}"
)


def block_mean(array, factor):
    h, w, c = array.shape
    return array.reshape(h // factor, factor, w // factor, factor, c).mean(axis=(1, 3))


def content(side):
    """Smooth RGB "tissue" of ``side`` pixels at 0.25 microns per pixel."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side] / side
    channels = []
    for _ in range(3):
        waves = sum(
            np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)
            for fy, fx, phase in rng.uniform((-9, -9, 0), (9, 9, 6.3), (4, 3))
        )
        channels.append(128 + 30 * waves)
    return np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)


def levels_of(image, factors):
    return [np.round(block_mean(image, f)).astype(np.uint8) for f in factors]


def write_generic(path, image, mpp, factors=(4, 16)):
    """A pyramidal TIFF (SubIFDs) with resolution tags in centimeters."""
    with tifffile.TiffWriter(path) as tif:
        tif.write(
            image,
            tile=(64, 64),
            subifds=len(factors),
            photometric="rgb",
            resolution=(1e4 / mpp, 1e4 / mpp),
            resolutionunit="CENTIMETER",
        )
        for level in levels_of(image, factors):
            tif.write(level, tile=(32, 32), subfiletype=1, photometric="rgb")


def write_svs(path, image, mpp, factors=(4,)):
    """An SVS-style TIFF: pages of decreasing size, the Aperio description
    saying the mpp, no resolution tags."""
    h, w = image.shape[:2]
    with tifffile.TiffWriter(path) as tif:
        tif.write(
            image,
            tile=(64, 64),
            photometric="rgb",
            description=APERIO.format(w=w, h=h, mpp=mpp),
        )
        for level in levels_of(image, factors):
            tif.write(
                level,
                tile=(32, 32),
                photometric="rgb",
                subfiletype=1,
                description=f"Aperio Image Library v12.0.15 \r\n{w}x{h} -> level",
            )


def write_ome(path, image, mpp, factors=(4,)):
    """An OME-TIFF whose OME-XML says the physical pixel size."""
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(
            image,
            tile=(64, 64),
            subifds=len(factors),
            photometric="rgb",
            metadata={"axes": "YXS", "PhysicalSizeX": mpp, "PhysicalSizeY": mpp},
        )
        for level in levels_of(image, factors):
            tif.write(level, tile=(32, 32), subfiletype=1, photometric="rgb")


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    """The same content at 0.25 (1024 pixels) and 0.5 (512 pixels) microns
    per pixel, in three TIFF flavours."""
    folder = tmp_path_factory.mktemp("slides")
    fine = content(1024)
    coarse = np.round(block_mean(fine, 2)).astype(np.uint8)
    paths = {
        "fine": str(folder / "fine_0.25.tif"),
        "coarse_svs": str(folder / "coarse_0.5.svs"),
        "coarse_ome": str(folder / "coarse_0.5.ome.tif"),
    }
    write_generic(paths["fine"], fine, 0.25)
    write_svs(paths["coarse_svs"], coarse, 0.5)
    write_ome(paths["coarse_ome"], coarse, 0.5)
    return paths, fine


# --- metadata ------------------------------------------------------------------


def test_property_mpp_reads_openslide_tiffslide_and_aperio_keys():
    assert property_mpp({"openslide.mpp-x": "0.25", "openslide.mpp-y": "0.26"}) == (
        0.26,
        0.25,
    )
    assert property_mpp({"tiffslide.mpp-x": 0.5, "tiffslide.mpp-y": 0.5}) == (0.5, 0.5)
    assert property_mpp({"aperio.MPP": "0.4990"}) == (0.499, 0.499)
    assert property_mpp({"openslide.mpp-x": "0"}) is None  # not a size
    assert property_mpp({"openslide.vendor": "generic-tiff"}) is None


def test_aperio_description_only_when_it_is_aperio():
    assert aperio_mpp(APERIO.format(w=10, h=10, mpp=0.252)) == (0.252, 0.252)
    assert aperio_mpp("ImageJ=1.52|MPP = 0.25") is None
    assert aperio_mpp("Aperio Image Library v12 no mpp here") is None


def test_ome_physical_size_in_its_units():
    xml = (
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image><Pixels PhysicalSizeX="250" PhysicalSizeXUnit="nm" '
        'PhysicalSizeY="0.3" PhysicalSizeYUnit="µm"/></Image></OME>'
    )
    assert ome_mpp(xml) == (0.3, 0.25)
    assert ome_mpp("<OME><Image><Pixels/></Image></OME>") is None
    assert ome_mpp("not xml") is None


def test_resolution_tags_in_inch_and_centimeter_not_screen_defaults():
    assert resolution_tag_mpp((40000, 1), (40000, 1), 3) == (0.25, 0.25)
    assert resolution_tag_mpp(101600, 50800, "INCH") == (0.5, 0.25)
    assert resolution_tag_mpp((1, 1), (1, 1), 1) is None  # no unit
    for dpi in (72, 96, 300):  # what image software writes by default
        assert resolution_tag_mpp(dpi, dpi, 2) is None


def test_slide_mpp_takes_the_first_source_that_says():
    description = APERIO.format(w=10, h=10, mpp=0.5)
    tags = ((40000, 1), (40000, 1), 3)
    assert slide_mpp({"openslide.mpp-x": "0.3"}, description, None, tags) == (
        0.3,
        0.3,
    )
    assert slide_mpp({}, description, None, tags) == (0.5, 0.5)
    assert slide_mpp(resolution=tags) == (0.25, 0.25)
    assert slide_mpp() is None


def test_level_mpps_and_choose_level():
    mpps = level_mpps((0.25, 0.25), [(4000, 6000), (1000, 1500), (250, 375)])
    assert mpps == [(0.25, 0.25), (1.0, 1.0), (4.0, 4.0)]
    assert choose_level(mpps, 1.0) == (1, (1.0, 1.0))  # a level matches
    assert choose_level(mpps, 1.0005) == (1, (1.0, 1.0))  # within 0.1%
    assert choose_level(mpps, 2.0) == (1, (0.5, 0.5))  # the finer one, shrunk
    assert choose_level(mpps, 50.0) == (2, (0.08, 0.08))
    level, factor = choose_level([(0.263, 0.263)], 0.25)  # a "40x" at 0.263
    assert level == 0 and factor[0] == pytest.approx(1.052)
    with pytest.raises(ValueError, match="coarser than the 0.25 asked for"):
        choose_level([(0.5, 0.5)], 0.25)
    assert resized_shape((1001, 600), (0.5, 0.5)) == (500, 300)


# --- patches of the same physical size -----------------------------------------


@pytest.mark.parametrize("coarse", ["coarse_svs", "coarse_ome"])
@pytest.mark.parametrize("patch_mpp", [0.5, 1.0])
def test_two_magnifications_give_the_same_patches(slides, coarse, patch_mpp):
    paths, _ = slides
    fine = open_image(paths["fine"], 0.1, patch_mpp=patch_mpp, low_mpp=8)
    other = open_image(paths[coarse], 0.1, patch_mpp=patch_mpp, low_mpp=8)
    side = int(1024 * 0.25 / patch_mpp)
    assert fine.shape == other.shape == (side, side, 3)
    assert fine.low_shape == other.low_shape == (32, 32, 3)
    assert fine.mpp == other.mpp == (patch_mpp, patch_mpp)
    assert fine.downsample == (patch_mpp / 0.25,) * 2
    assert other.downsample == (patch_mpp / 0.5,) * 2
    corners = [[0, 0], [37, 101], [side - 20, side - 50]]
    a, b = fine.read(corners, (32, 32)), other.read(corners, (32, 32))
    # The same physical place: equal up to the rounding of the written levels.
    np.testing.assert_allclose(a, b, atol=1.01 / 255)
    assert np.abs(a - b).mean() < 0.3 / 255
    np.testing.assert_allclose(fine.low(), other.low(), atol=2.01 / 255)
    fine.close()
    other.close()


def test_a_matching_level_is_read_as_it_is_and_others_resized(slides):
    paths, image = slides
    # The fine slide has a level at 1.0 microns per pixel: no resizing.
    exact = open_image(paths["fine"], 0.25, patch_mpp=1.0)
    assert exact.inner.patch_level == 1 and exact._steps is None
    level1 = np.round(block_mean(image, 4)) / 255
    np.testing.assert_allclose(
        exact.read([[10, 20]], (16, 16))[0], level1[10:26, 20:36]
    )
    # 0.5: no level matches; level 0 is halved by area averaging.
    halved = open_image(paths["fine"], 0.25, patch_mpp=0.5)
    assert halved.inner.patch_level == 0 and halved.shape == (512, 512, 3)
    expected = block_mean(image / 255, 2)[30:62, 40:72]
    np.testing.assert_allclose(
        halved.read([[30, 40]], (32, 32))[0], expected, atol=1e-6
    )
    # The low view follows --low-scale of the patches' resolution.
    assert halved.low_shape == (128, 128, 3)
    exact.close()
    halved.close()


def test_a_non_integer_factor_puts_each_pixel_where_it_belongs(tmp_path):
    # A ramp along x: the value of level-0 column x is x.
    ramp = np.tile(np.arange(512, dtype=np.uint16), (64, 1))
    path = str(tmp_path / "ramp.tif")
    tifffile.imwrite(
        path, ramp, tile=(32, 32), resolution=(40000, 40000), resolutionunit=3
    )
    source = open_image(path, 0.5, patch_mpp=0.3)  # 1.2 level-0 pixels each
    assert source.shape == (53, 427, 1)
    patch = source.read([[5, 100]], (8, 40))[0, ..., 0] * 65535
    # A read pixel j covers level-0 columns [1.2 j, 1.2 (j + 1)): the mean of
    # floor(t) over that interval.
    fine = np.arange(0, 512, 1e-3)
    columns = np.arange(100, 140)
    expected = [
        np.floor(fine[(fine >= 1.2 * j) & (fine < 1.2 * (j + 1))]).mean()
        for j in columns
    ]
    np.testing.assert_allclose(patch, np.tile(expected, (8, 1)), atol=0.01)
    source.close()


def test_openslide_formats_take_the_mpp_from_the_slide_properties(
    slides, tmp_path, monkeypatch
):
    pytest.importorskip("tiffslide", reason="needs tiffslide")
    paths, _ = slides
    path = str(tmp_path / "fine.scn")  # an OpenSlide format: read as a slide
    shutil.copy(paths["fine"], path)
    monkeypatch.setattr(files_module, "_slide_library", lambda: "tiffslide")
    slide = open_image(path, 0.1, patch_mpp=0.5, low_mpp=8)
    tiff = open_image(paths["fine"], 0.1, patch_mpp=0.5, low_mpp=8)
    assert slide.format == "slide" and slide.shape == tiff.shape
    corners = [[3, 5], [200, 300]]
    np.testing.assert_allclose(
        slide.read(corners, (32, 32)), tiff.read(corners, (32, 32)), atol=1e-6
    )
    np.testing.assert_allclose(slide.low(), tiff.low(), atol=1e-6)
    exact = open_image(path, 0.25, patch_mpp=1.0)  # level 1, read as it is
    assert exact.inner.patch_level == 1
    for source in (slide, tiff, exact):
        source.close()


def test_slide_source_reads_patches_from_another_level(slides):
    pytest.importorskip("tiffslide", reason="needs tiffslide")
    paths, image = slides
    source = SlideSource(paths["fine"], low_level=2, patch_level=1)
    assert source.shape == (256, 256, 3) and source.levels[1] == (256, 256)
    level1 = np.round(block_mean(image, 4)).astype(np.uint8)
    np.testing.assert_array_equal(
        source.read([[40, 70]], (16, 24))[0], level1[40:56, 70:94]
    )
    assert float(source.properties["tiffslide.mpp-x"]) == 0.25
    source.close()


# --- errors ----------------------------------------------------------------------


def test_no_resolution_metadata_is_an_error_naming_the_file_and_the_fix(tmp_path):
    path = str(tmp_path / "plain.tif")
    tifffile.imwrite(path, np.zeros((256, 256, 3), np.uint8), tile=(64, 64))
    with pytest.raises(SourceError, match="no resolution metadata") as error:
        open_image(path, 0.1, patch_mpp=0.5)
    assert path in str(error.value) and "give levels instead" in str(error.value)
    screen = str(tmp_path / "screen.tif")  # 72 dpi: a software default
    tifffile.imwrite(
        screen, np.zeros((256, 256, 3), np.uint8), tile=(64, 64), resolution=(72, 72)
    )
    with pytest.raises(SourceError, match="no resolution metadata"):
        open_image(screen, 0.1, low_mpp=32)
    open_image(path, 0.1).close()  # without mpp, the file is fine


def test_formats_without_metadata_and_bad_arguments(tmp_path, slides):
    from PIL import Image

    path = str(tmp_path / "photo.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path)
    with pytest.raises(SourceError, match="png file carries none"):
        open_image(path, 0.1, patch_mpp=0.5)
    paths, _ = slides
    with pytest.raises(SourceError, match="lower magnification"):
        open_image(paths["coarse_svs"], 0.1, patch_mpp=0.25 / 1.2)
    with pytest.raises(ValueError, match="low_mpp"):
        open_image(paths["fine"], 0.1, patch_mpp=1.0, low_mpp=0.5)
    with pytest.raises(ValueError, match="patch_mpp"):
        open_image(paths["fine"], 0.1, patch_mpp=-1)
    with pytest.raises(SourceError, match="larger than the patch level"):
        open_image(paths["fine"], 0.1, low_mpp=0.1)


def test_check_manifest_with_mpp(slides, tmp_path):
    paths, _ = slides
    plain = str(tmp_path / "plain.tif")
    tifffile.imwrite(plain, np.zeros((256, 256, 3), np.uint8), tile=(64, 64))
    csv = tmp_path / "manifest.csv"
    csv.write_text(
        "path,label,split\n"
        f"{paths['fine']},a,train\n{paths['coarse_svs']},b,train\n{plain},a,test\n"
    )
    manifest = read_manifest(csv)
    checked = check_manifest(manifest, 64, 0.1, skip_bad=True, patch_mpp=0.5, low_mpp=8)
    assert checked.low_shapes == [(32, 32), (32, 32)]
    assert [p.line for p in checked.skipped] == [4]
    assert "no resolution metadata" in checked.skipped[0].problem
    source = checked.open(0)
    assert source.shape == (512, 512, 3) and source.mpp == (0.5, 0.5)
    source.close()
    # 300 pixels of 1 micron: larger than the slides (256 microns a side).
    with pytest.raises(ManifestError) as error:
        check_manifest(manifest, 300, 0.1, patch_mpp=1.0, low_mpp=8)
    problems = [p.problem for p in error.value.problems]
    assert sum("smaller than the patch size (300, 300)" in p for p in problems) == 2
