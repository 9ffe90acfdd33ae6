"""Slide formats through one source interface, each on a file written here in
that format: SVS (Aperio), generic pyramidal TIFF and OME-TIFF (tifffile),
DICOM WSI (wsidicom). Formats nothing here can write (Hamamatsu ``.ndpi``,
MIRAX ``.mrxs``) are only dispatched to OpenSlide (or tiffslide): tested for
the dispatch and its error, not for reading.
"""

import importlib.util
import os
import shutil

import numpy as np
import pytest

from ats.data import SlideSource, SourceError, TiffSource, open_image, probe_image
from ats.data import files as files_module
from ats.data.files import image_format

tifffile = pytest.importorskip("tifffile", reason="the format tests need tifffile")
pytest.importorskip("zarr", reason="the format tests need zarr")

SIDE = (256, 384)
CORNERS = [[0, 0], [100, 200], [-10, -20], [230, 370]]
APERIO = (
    "Aperio Image Library v12.0.15 \r\n{w}x{h} [0,0 {w}x{h}] (64x64) JPEG/RGB "
    "Q=90|AppMag = 20|MPP = 0.5"
)


def rgb_image(seed=0):
    """Smooth RGB content (blocks of 16 pixels), which JPEG keeps closely."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(40, 220, (SIDE[0] // 16, SIDE[1] // 16, 3))
    return np.kron(blocks, np.ones((16, 16, 1))).astype(np.uint8)


def write_svs(path, image):
    """As an Aperio scanner writes it: tiled JPEG level 0 with the Aperio
    description (no tifffile metadata), a stripped thumbnail page, a tiled
    reduced level."""
    h, w = image.shape[:2]
    with tifffile.TiffWriter(path) as tif:
        options = dict(photometric="rgb", compression="jpeg", metadata=None)
        tif.write(image, tile=(64, 64), description=APERIO.format(w=w, h=h), **options)
        tif.write(image[::8, ::8], description=f"Aperio thumbnail {w}x{h}", **options)
        tif.write(  # not marked reduced, as Aperio writes its levels
            image[::4, ::4],
            tile=(64, 64),
            description=f"Aperio Image Library v12.0 \r\n{w}x{h} -> {w // 4}x{h // 4}",
            **options,
        )


def write_generic(path, image):
    """A generic pyramidal TIFF: levels as successive reduced pages."""
    with tifffile.TiffWriter(path) as tif:
        tif.write(image, tile=(64, 64), photometric="rgb", compression="zlib")
        tif.write(image[::4, ::4], tile=(64, 64), subfiletype=1, photometric="rgb")


def write_ome(path, image):
    """An OME-TIFF: OME-XML, reduced levels in SubIFDs."""
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(
            image,
            tile=(64, 64),
            subifds=1,
            photometric="rgb",
            metadata={"axes": "YXS", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5},
        )
        tif.write(image[::4, ::4], tile=(64, 64), subfiletype=1, photometric="rgb")


WRITERS = {
    "svs": ("slide.svs", write_svs, "aperio", 3.0),
    "generic": ("slide.tif", write_generic, "generic-tiff", 0.0),
    "ome": ("slide.ome.tif", write_ome, None, 0.0),
}


def expected_patches(image, corners, size):
    out = np.zeros((len(corners), *size, image.shape[-1]), np.float64)
    for i, (y, x) in enumerate(corners):
        y0, x0 = max(y, 0), max(x, 0)
        y1, x1 = min(y + size[0], image.shape[0]), min(x + size[1], image.shape[1])
        out[i, y0 - y : y1 - y, x0 - x : x1 - x] = image[y0:y1, x0:x1]
    return out / 255.0


@pytest.mark.parametrize("flavour", sorted(WRITERS))
def test_tiff_flavours_read_through_open_image(tmp_path, flavour):
    name, write, _, jpeg_error = WRITERS[flavour]
    image = rgb_image()
    path = str(tmp_path / name)
    write(path, image)
    with tifffile.TiffFile(path) as tif:  # the file is what its name says
        assert tif.is_svs == (flavour == "svs")
        assert tif.is_ome == (flavour == "ome")
    assert image_format(path) == "tiff"
    info = probe_image(path)
    assert info.levels == [SIDE, (SIDE[0] // 4, SIDE[1] // 4)]
    source = open_image(path, low_scale=0.25)
    assert source.low_from == "pyramid level 1"
    patches = source.read(CORNERS, (32, 48))
    stored = tifffile.imread(path, series=0, level=0)  # as tifffile decodes it
    np.testing.assert_allclose(
        patches, expected_patches(stored, CORNERS, (32, 48)), atol=1e-6
    )
    error = np.abs(patches - expected_patches(image, CORNERS, (32, 48))) * 255
    assert error.mean() <= jpeg_error + 1e-3
    if flavour != "generic":  # the mpp is in the Aperio description / OME-XML
        assert open_image(path, 1.0, patch_mpp=1.0).shape == (128, 192, 3)
    source.close()


@pytest.mark.parametrize("flavour", ["svs", "generic"])
def test_openslide_reads_the_svs_and_generic_files_as_their_vendor(tmp_path, flavour):
    if importlib.util.find_spec("openslide") is None:
        pytest.skip("needs openslide-python and openslide-bin")
    name, write, vendor, _ = WRITERS[flavour]
    image = rgb_image()
    path = str(tmp_path / name)
    write(path, image)
    source = SlideSource(path, low_level=1, library="openslide")
    assert source.properties["openslide.vendor"] == vendor
    ours = TiffSource(path, low_level=1)
    np.testing.assert_array_equal(
        source.read(CORNERS, (32, 48)), ours.read(CORNERS, (32, 48))
    )
    source.close()
    ours.close()


# --- DICOM WSI -------------------------------------------------------------------


def write_dicom(folder, image, tile=64, mpp=0.5):
    """A DICOM WSI of ``image`` written by wsidicom: JPEG tiles, the missing
    pyramid levels added (each half the previous), ``mpp`` microns per
    pixel. Returns the written files."""
    from pydicom.uid import generate_uid
    from wsidicom import WsiDicom
    from wsidicom.geometry import Size, SizeMm
    from wsidicom.instance import NumpyImageData, WsiDataset, WsiInstance
    from wsidicom.metadata import (
        Equipment,
        Image,
        ImageType,
        Label,
        OpticalPath,
        Patient,
        Pyramid,
        Series,
        Slide,
        SlideSample,
        Study,
        WsiMetadata,
    )
    from wsidicom.metadata.schema.dicom.wsi import WsiMetadataDicomSchema
    from wsidicom.source import Source

    class TiledArray(NumpyImageData):
        """An in-memory array served tile by tile (white beyond it)."""

        tile_size = property(lambda self: Size(tile, tile))
        pixel_spacing = property(lambda self: SizeMm(mpp / 1000, mpp / 1000))
        lossy_compression = property(lambda self: None)

        def get_decoded_tile(self, tile_point, z, path, cache=True):
            out = np.full((tile, tile, 3), 255, np.uint8)
            y, x = tile_point.y * tile, tile_point.x * tile
            part = self._pixels[y : y + tile, x : x + tile]
            out[: part.shape[0], : part.shape[1]] = part
            return out

        def get_encoded_tile(self, tile_point, z, path):
            return self.encoder.encode(self.get_decoded_tile(tile_point, z, path))

    class ArraySlide(Source):
        def __init__(self):
            super().__init__()
            metadata = WsiMetadata(
                Study(uid=generate_uid()),
                Series(uid=generate_uid()),
                Patient(),
                Equipment(),
                Slide(
                    identifier="ats-test",
                    samples=[SlideSample(identifier="sample", uid=generate_uid())],
                ),
                Pyramid(
                    image=Image(), optical_paths=[OpticalPath()], uid=generate_uid()
                ),
                Label(),
                frame_of_reference_uid=generate_uid(),
                dimension_organization_uids=[generate_uid()],
            )
            self.dataset = WsiMetadataDicomSchema().dump(metadata, ImageType.VOLUME)
            self.instance = WsiInstance.create_instance(
                TiledArray(image), self.dataset, ImageType.VOLUME, 0
            )

        base_dataset = property(lambda self: WsiDataset(self.dataset))
        level_instances = property(lambda self: [self.instance])
        label_instances = property(lambda self: [])
        overview_instances = property(lambda self: [])
        thumbnail_instances = property(lambda self: [])
        annotation_instances = property(lambda self: [])
        metadata = property(lambda self: None)

        def close(self):
            pass

    return WsiDicom(ArraySlide()).save(folder, add_missing_levels=True)


@pytest.fixture(scope="module")
def dicom_slide(tmp_path_factory):
    pytest.importorskip("wsidicom", reason="DICOM WSI needs the [dicom] extra")
    image = rgb_image(1)
    folder = tmp_path_factory.mktemp("dicom") / "slide"
    files = write_dicom(str(folder), image)
    return str(folder), [str(f) for f in files], image


def test_dicom_slide_reads_through_open_image(dicom_slide):
    folder, files, image = dicom_slide
    assert image_format(folder) == "dicom" and len(files) >= 3
    info = probe_image(folder)
    assert info.format == "dicom" and info.levels[:3] == [
        SIDE,
        (SIDE[0] // 2, SIDE[1] // 2),
        (SIDE[0] // 4, SIDE[1] // 4),
    ]
    source = open_image(folder, low_scale=0.25)
    assert source.low_from == "pyramid level 2" and source.shape == (*SIDE, 3)
    error = np.abs(
        source.read(CORNERS, (32, 48)) - expected_patches(image, CORNERS, (32, 48))
    )
    assert error.mean() * 255 <= 3.0  # JPEG
    # The low view is level 2 as stored (wsidicom computed it, as JPEG).
    from wsidicom import WsiDicom

    with WsiDicom.open(folder) as wsi:
        stored = wsi.read_region((0, 0), 2, (SIDE[1] // 4, SIDE[0] // 4), as_array=True)
    np.testing.assert_allclose(source.low(), stored / 255.0, atol=1e-6)
    source.close()
    # Microns per pixel from the DICOM pixel spacing: level 1 is 1.0.
    physical = open_image(folder, 1.0, patch_mpp=1.0, low_mpp=4.0)
    assert physical.mpp == (1.0, 1.0) and physical.shape == (128, 192, 3)
    assert physical.low().shape == (32, 48, 3)  # 4 microns: 1/8 of level 0
    physical.close()


def test_one_dicom_instance_file_and_content_detection(dicom_slide, tmp_path):
    folder, files, image = dicom_slide
    largest = max(files, key=os.path.getsize)  # level 0
    assert image_format(largest) == "dicom"
    renamed = tmp_path / "level0.bin"  # recognised by its "DICM" preamble
    shutil.copyfile(largest, renamed)
    assert image_format(str(renamed)) == "dicom"
    assert probe_image(largest).levels == [SIDE]


def test_dicom_without_wsidicom_says_how_to_install(tmp_path, monkeypatch):
    import builtins

    folder = tmp_path / "slide"
    folder.mkdir()
    (folder / "level0.dcm").write_bytes(b"\0" * 128 + b"DICM")
    real_import = builtins.__import__

    def no_wsidicom(name, *args, **kwargs):
        if name == "wsidicom":
            raise ImportError("No module named 'wsidicom'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wsidicom)
    with pytest.raises(ImportError, match=r"slide.*attention-sampling\[dicom\]"):
        open_image(str(folder), 0.25)


def test_a_damaged_dicom_folder_is_a_source_error(tmp_path):
    pytest.importorskip("wsidicom", reason="DICOM WSI needs the [dicom] extra")
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "level0.dcm").write_bytes(b"\0" * 128 + b"DICM" + os.urandom(200))
    with pytest.raises(SourceError, match=r"broken: wsidicom cannot open it"):
        open_image(str(folder), 0.25)


# --- formats claimed through OpenSlide only ------------------------------------


@pytest.mark.parametrize("name", ["scan.ndpi", "scan.mrxs"])
def test_openslide_formats_are_dispatched_to_the_slide_reader(tmp_path, name):
    if importlib.util.find_spec("openslide") is None:
        pytest.importorskip("tiffslide", reason="slide formats need a slide library")
    path = tmp_path / name
    path.write_bytes(os.urandom(1024))  # not a slide: the reader says so
    assert image_format(str(path)) == "slide"
    library = files_module._slide_library()
    with pytest.raises(SourceError, match=rf"{name}: {library} cannot open it"):
        open_image(str(path), 0.25)


def test_content_decides_when_the_name_does_not(tmp_path):
    image = rgb_image()
    path = tmp_path / "scan_without_extension"
    write_generic(str(path), image)
    assert image_format(str(path)) == "tiff"
    source = open_image(str(path), 0.25)
    assert source.low_from == "pyramid level 1"
    source.close()
    junk = tmp_path / "notes.xyz"
    junk.write_bytes(b"hello")
    with pytest.raises(SourceError, match=r"notes.xyz: unknown image format '.xyz'"):
        image_format(str(junk))
