"""The synthetic whole-slide images of the pathology demo: format, metadata,
labels and where the structures are, checked on a tiny version."""

import csv
import json

import numpy as np
import pytest

from ats.datasets import synthetic_slides
from ats.datasets.synthetic_slides import (
    LABELS,
    MPP,
    TILE,
    render_tile,
    slide_plan,
    write_demo_slides,
)

tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")
pytest.importorskip("imagecodecs")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slides")
    manifest = write_demo_slides(folder, n_slides=4, side_range=(2048, 3072), seed=1)
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    structures = json.loads((folder / "structures.json").read_text())
    return folder, rows, structures


def _level0(path):
    tif = tifffile.TiffFile(path)
    return tif, zarr.open(tif.series[0].aszarr(level=0), mode="r")


def test_manifest_has_cases_of_one_label_and_both_classes(demo):
    folder, rows, structures = demo
    assert list(rows[0]) == ["path", "label", "group"]
    assert len(rows) == 4
    assert {r["label"] for r in rows} == set(LABELS)
    by_case = {}
    for r in rows:
        assert (folder / r["path"]).is_file() and r["path"].endswith(".svs")
        by_case.setdefault(r["group"], set()).add(r["label"])
        assert structures[r["path"]]["label"] == r["label"]
    assert all(len(labels) == 1 for labels in by_case.values())
    assert len(by_case) < len(rows)  # some case has two slides


def test_slides_are_svs_pyramids_with_mpp_metadata(demo):
    folder, rows, structures = demo
    for r in rows:
        path = folder / r["path"]
        with tifffile.TiffFile(path) as tif:
            assert tif.is_svs
            names = [s.name for s in tif.series]
            assert names[:2] == ["Baseline", "Thumbnail"]
            levels = tif.series[0].levels
            shape = tuple(structures[r["path"]]["shape"])
            assert levels[0].shape == (*shape, 3)
            assert 2048 <= min(shape) <= max(shape) <= 3072
            for finer, coarser in zip(levels, levels[1:]):
                assert coarser.shape[0] == -(-finer.shape[0] // 4)
            assert len(levels) >= 2
            page = tif.pages[0]
            assert page.is_tiled and (page.tilelength, page.tilewidth) == (TILE, TILE)
            assert page.compression == 7  # JPEG
            assert page.description.startswith("Aperio Image Library")
            assert f"|MPP = {MPP}|" in page.description
            assert page.tags["ResolutionUnit"].value == 3  # centimetre
            numerator, denominator = page.tags["XResolution"].value
            assert numerator / denominator == pytest.approx(1e4 / MPP)


def test_the_library_reads_their_mpp(demo):
    from ats.data.files import open_image

    folder, rows, _ = demo
    source = open_image(folder / rows[0]["path"], 0.1, patch_mpp=0.5, low_mpp=8)
    assert source.mpp == pytest.approx((MPP, MPP))
    assert np.allclose(source.downsample, 1)


def test_openslide_sees_an_aperio_slide(demo):
    openslide = pytest.importorskip("openslide")
    folder, rows, structures = demo
    slide = openslide.OpenSlide(str(folder / rows[0]["path"]))
    try:
        assert slide.properties["openslide.vendor"] == "aperio"
        assert float(slide.properties["openslide.mpp-x"]) == MPP
        h, w = structures[rows[0]["path"]]["shape"]
        assert slide.level_dimensions[0] == (w, h)
        assert slide.level_count >= 2
    finally:
        slide.close()


def test_only_tumour_slides_have_tumour_nests_and_they_are_dark(demo):
    folder, rows, structures = demo
    for r in rows:
        entry = structures[r["path"]]
        assert bool(entry["tumour_boxes"]) == (r["label"] == "tumour")
        assert entry["lymphoid_boxes"]
        tif, level0 = _level0(folder / r["path"])
        with tif:
            for y0, x0, y1, x1 in entry["tumour_boxes"] + entry["lymphoid_boxes"]:
                cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
                r0 = (y1 - y0) // 4
                nest = np.asarray(level0[cy - r0 : cy + r0, cx - r0 : cx + r0])
                # Packed nuclei: much darker than the pink tissue (> 170).
                assert nest.mean() < 160


def test_tumour_nuclei_are_larger_than_lymphocytes():
    plan = slide_plan(0, "tumour", seed=0, side_range=(4096, 4096))
    sizes = {
        kind: np.mean(
            [
                np.sqrt(s["nuclei"][:, 2] * s["nuclei"][:, 3]).mean()
                for s in plan["structures"]
                if s["kind"] == kind
            ]
        )
        for kind in ("tumour", "lymphoid")
    }
    assert sizes["tumour"] > 1.7 * sizes["lymphoid"]


def test_file_tiles_are_the_rendered_ones(demo):
    folder, rows, structures = demo
    path = rows[0]["path"]
    plan = slide_plan(0, rows[0]["label"], seed=1, side_range=(2048, 3072))
    assert list(plan["shape"]) == structures[path]["shape"]
    tif, level0 = _level0(folder / path)
    with tif:
        ty, tx = (s // TILE // 2 for s in plan["shape"])  # tissue at the centre
        stored = np.asarray(
            level0[ty * TILE : (ty + 1) * TILE, tx * TILE : (tx + 1) * TILE]
        )
    rendered = render_tile(plan, ty, tx, seed=1)
    assert rendered.std() > 5  # textured tissue, not glass
    # Equal to JPEG's loss (quality 80, chroma subsampled).
    assert np.abs(stored.astype(int) - rendered).mean() < 6


def test_the_tissue_mask_keeps_the_structures_and_drops_the_pen():
    from ats.data.masks import tissue_mask

    for index in range(12):
        plan = slide_plan(index, "tumour", seed=0, side_range=(4096, 4096))
        if plan["ink"].max() > 0:
            break
    else:
        pytest.fail("no pen mark in 12 slides")
    tissue = np.asarray(plan["tissue"]) > 0.05
    ink = np.asarray(plan["ink"]) > 0.5
    assert (ink & ~tissue).any()
    renderer = synthetic_slides._Renderer(plan, 0)
    rows, columns = (s // TILE for s in plan["shape"])
    low = np.concatenate(
        [
            np.concatenate(
                [
                    synthetic_slides._block_mean(renderer.tile(ty, tx), 16, 255)
                    for tx in range(columns)
                ],
                axis=1,
            )
            for ty in range(rows)
        ]
    )  # a low view at 1/16: a coarse field cell is 4x4 of its pixels
    mask = tissue_mask(low.astype("float32") / 255)
    for structure in plan["structures"]:
        cy, cx = (int(c) // 16 for c in structure["centre"])
        assert mask[cy, cx]
    pen = np.kron(ink & ~tissue, np.ones((4, 4), bool))[
        : mask.shape[0], : mask.shape[1]
    ]
    assert pen.any() and mask[pen].mean() < 0.05


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_slides": 1}, "`n_slides` must be"),
        ({"side_range": (1000, 3000)}, "2048 <= low <= high"),
        ({"side_range": (4000, 3000)}, "2048 <= low <= high"),
        ({"quality": 0}, "`quality` must be"),
    ],
)
def test_bad_arguments_are_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_demo_slides(tmp_path, **kwargs)
