"""``ats fit``, ``ats evaluate`` and ``ats predict`` on a synthetic data set
of mixed sizes and formats, through the command line, on every backend."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from ats.cli import main
from ats.datasets.synthetic_sizes import write_synthetic

# A short run that the synthetic set's objects decide (chance: 50% error).
FIT = [
    "--epochs", "3", "--low-scale", "0.1", "--patch-size", "48x48",
    "--n-patches", "6", "--batch-size", "8", "--picture-images", "0",
    "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    directory = tmp_path_factory.mktemp("synthetic")
    return write_synthetic(directory, n_images=160, max_side=1600, seed=1)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_fit_evaluate_predict_beat_chance(synthetic, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["fit", "--data", str(synthetic), "--run-dir", str(run_dir), *FIT]) == 0
    out = capsys.readouterr().out
    assert "step shapes" in out
    for name in ("config.json", "metrics.csv", "checkpoint.npz", "report.md"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "pictures" / "epoch_001_image_0.png").is_file()
    assert (run_dir / "pictures" / "final_image_0_patches.png").is_file()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"]["classes"] == ["diagonal", "upright"]
    assert 1 <= len(config["data"]["buckets"]) <= 8

    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    # Chance is 50%; the objects that decide the label are found.
    assert evaluation["top_k"]["accuracy"] >= 0.75, evaluation["top_k"]
    assert evaluation["sampled"]["accuracy"] >= 0.7, evaluation["sampled"]
    assert evaluation["sampled"]["passes"] == 5

    (run_dir / "evaluation.md").unlink()
    assert main(["evaluate", "--run-dir", str(run_dir), "--quiet"]) == 0
    markdown = (run_dir / "evaluation.md").read_text()
    assert "balanced accuracy" in markdown and "ROC AUC" in markdown

    # predict: a folder with one file that cannot be read among images.
    images = synthetic.parent / "images"
    folder = tmp_path / "new"
    folder.mkdir()
    for path in sorted(images.iterdir())[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.png").write_bytes(b"not a png")
    out_dir = tmp_path / "predictions"
    assert (
        main(
            [
                "predict",
                "--run-dir",
                str(run_dir),
                "--data",
                str(folder),
                "--out",
                str(out_dir),
                "--quiet",
            ]
        )
        == 0
    )
    predictions = _rows(out_dir / "predictions.csv")
    assert len(predictions) == 3
    for row in predictions:
        assert row["predicted"] in ("diagonal", "upright")
        total = float(row["p_diagonal"]) + float(row["p_upright"])
        assert total == pytest.approx(1, abs=1e-4)
        total = float(row["p_top_k_diagonal"]) + float(row["p_top_k_upright"])
        assert total == pytest.approx(1, abs=1e-4)
    unreadable = _rows(out_dir / "unreadable.csv")
    assert [row["path"].endswith("broken.png") for row in unreadable] == [True]
    heatmaps = sorted((out_dir / "heatmaps").iterdir())
    assert len(heatmaps) == 6
    for path in heatmaps:
        with Image.open(path) as image:
            assert image.format == "PNG"


def _write_manifest(directory, lines):
    path = directory / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _png(path, shape, value=128):
    Image.fromarray(np.full(shape, value, "uint8")).save(path)


@pytest.fixture
def bad_manifest(tmp_path):
    """A manifest with one row of every problem, and good rows."""
    for i in range(4):
        _png(tmp_path / f"good{i}.png", (300, 400))
    _png(tmp_path / "small.png", (20, 400))
    _png(tmp_path / "rgb.png", (300, 400, 3))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("text")
    _png(tmp_path / "empty_mask.png", (300, 400), value=0)
    _png(tmp_path / "full_mask.png", (300, 400), value=255)
    lines = [
        "path,label,split,mask",
        "good0.png,a,train,full_mask.png",  # line 2
        "good1.png,b,train,full_mask.png",
        "good2.png,a,test,full_mask.png",
        "good3.png,b,test,full_mask.png",
        "missing.png,a,train,full_mask.png",  # line 6
        "broken.png,a,train,full_mask.png",
        "notes.txt,a,train,full_mask.png",
        "good0.png,,train,full_mask.png",  # line 9: empty label
        "small.png,a,train,full_mask.png",
        "rgb.png,b,train,full_mask.png",
        "good1.png,a,train,empty_mask.png",  # line 12
        "good2.png,b,train,no_such_mask.png",
    ]
    return _write_manifest(tmp_path, lines)


def test_every_bad_row_is_reported_at_once(bad_manifest, tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["fit", "--data", str(bad_manifest), "--run-dir", str(run_dir)]
    args += ["--patch-size", "32x32", "--mask", "file", "--quiet"]
    assert main(args) == 1
    error = capsys.readouterr().err
    expected = {
        6: "missing.png",
        7: "broken.png",
        8: "notes.txt",
        9: "good0.png",
        10: "small.png",
        11: "rgb.png",
        12: "good1.png",
        13: "good2.png",
    }
    for line, name in expected.items():
        assert f"line {line}, " in error and name in error, (line, error)
    for words in (
        "not found",
        "empty label",
        "smaller than the patch",
        "channel",
        "mask is empty",
        "mask file not found",
    ):
        assert words in error, (words, error)
    assert not run_dir.exists() or not any(run_dir.iterdir())


def test_skip_bad_trains_on_the_rest_and_lists_the_skipped(
    bad_manifest, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    args = ["fit", "--data", str(bad_manifest), "--run-dir", str(run_dir)]
    args += ["--patch-size", "32x32", "--mask", "file", "--skip-bad", "--quiet"]
    args += ["--epochs", "1", "--n-patches", "2", "--batch-size", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("skipped: ") == 8
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"]["images"] == {"train": 2, "val": 0, "test": 2}
    assert len(config["data"]["skipped"]) == 8


def test_a_manifest_without_its_columns_is_refused(tmp_path, capsys):
    manifest = _write_manifest(tmp_path, ["file,class", "a.png,x"])
    args = ["fit", "--data", str(manifest), "--run-dir", str(tmp_path / "r")]
    assert main(args) == 1
    error = capsys.readouterr().err
    assert "path" in error and "label" in error
