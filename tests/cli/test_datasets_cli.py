"""``ats datasets``: thin shells that write DIR/manifest.csv and say what to
run next (offline: the real data sets from small local files)."""

import csv

import numpy as np
import pytest

from ats.cli import main

PIL = pytest.importorskip("PIL.Image")


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_synthetic_writes_a_manifest_and_prints_the_next_command(tmp_path, capsys):
    folder = tmp_path / "shapes"
    status = main(
        [
            "datasets",
            "synthetic",
            str(folder),
            "--n-images",
            "4",
            "--seed",
            "2",
            "--max-side",
            "600",
        ]
    )
    assert status == 0
    rows = _rows(folder / "manifest.csv")
    assert len(rows) == 4
    out = capsys.readouterr().out
    assert f"ats fit --data {folder / 'manifest.csv'}" in out
    assert "--run-dir" in out
    assert "4 files" in out


def test_speed_limits_without_download_reads_local_files(tmp_path, capsys):
    for name, line in (
        ("Set1", "1Image000001.jpg:VISIBLE, 9, 9, 1, 1, PROHIBITORY, 50_SIGN;\n"),
        ("Set2", "2Image000001.jpg:\n"),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "annotations.txt").write_text(line)
        PIL.new("RGB", (32, 24)).save(tmp_path / name / line.split(":")[0])
    assert (
        main(
            [
                "datasets",
                "speed-limits",
                str(tmp_path),
                "--no-download",
                "--val-fraction",
                "0",
            ]
        )
        == 0
    )
    rows = _rows(tmp_path / "manifest.csv")
    assert [(r["label"], r["split"]) for r in rows] == [
        ("1_limit50", "train"),
        ("0_none", "test"),
    ]
    out = capsys.readouterr().out
    assert "--preset speed-limits" in out and "ats fit --data" in out


def test_colon_cancer_without_download_reads_local_files(tmp_path, capsys):
    scipy_io = pytest.importorskip("scipy.io")
    for n, rows in ((1, np.zeros((0, 2))), (2, np.ones((3, 2)))):
        folder = tmp_path / "Classification" / f"img{n}"
        folder.mkdir(parents=True)
        PIL.new("RGB", (40, 40)).save(folder / f"img{n}.bmp")
        scipy_io.savemat(folder / f"img{n}_epithelial.mat", {"detection": rows})
    assert main(["datasets", "colon-cancer", str(tmp_path), "--no-download"]) == 0
    labels = [r["label"] for r in _rows(tmp_path / "manifest.csv")]
    assert labels == ["negative", "positive"]
    assert "--preset colon-cancer" in capsys.readouterr().out


def test_problems_are_one_line_errors(tmp_path, capsys):
    assert main(["datasets", "speed-limits", str(tmp_path), "--no-download"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ats: error: ") and "annotations.txt" in err
    assert main(["datasets", "synthetic", str(tmp_path), "--n-images", "0"]) == 1
    assert "n_images" in capsys.readouterr().err


def test_group_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["datasets", "--help"])
    out = capsys.readouterr().out
    for command in ("speed-limits", "colon-cancer", "synthetic"):
        assert command in out
