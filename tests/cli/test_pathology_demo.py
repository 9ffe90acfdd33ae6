"""The pathology demo's path through the command line, tiny: ``ats datasets
demo-slides``, then ``ats fit`` in microns per pixel on the tissue mask,
``ats evaluate`` and ``ats predict`` with its heatmaps and QuPath overlays
(scripts/pathology_demo.sh runs the same commands on larger slides)."""

import csv
import json

import pytest

from ats.cli import main

pytest.importorskip("tifffile")
pytest.importorskip("imagecodecs")


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_demo_slides_fit_evaluate_predict(tmp_path, capsys):
    slides = tmp_path / "slides"
    assert (
        main(
            [
                "datasets",
                "demo-slides",
                str(slides),
                "--n-slides",
                "6",
                "--side-range",
                "2048",
                "2304",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    manifest = slides / "manifest.csv"
    assert "6 files" in out
    assert f"ats fit --data {manifest} --patch-mpp 0.5 --low-mpp 32" in out
    rows = _rows(manifest)
    assert {r["label"] for r in rows} == {"normal", "tumour"}

    run = tmp_path / "run"
    fit = [
        "fit", "--data", str(manifest), "--run-dir", str(run), "--quiet",
        "--patch-mpp", "0.5", "--low-mpp", "16", "--mask", "tissue",
        "--patch-size", "32x32", "--n-patches", "2", "--batch-size", "2",
        "--epochs", "1", "--picture-images", "0", "--val-fraction", "0",
    ]  # fmt: skip
    assert main(fit) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["patch_mpp"] == 0.5
    assert config["train"]["mask"] == "tissue"
    assert main(["evaluate", "--run-dir", str(run), "--quiet"]) == 0
    evaluation = json.loads((run / "evaluation.json").read_text())
    cases = evaluation["roc_auc_intervals"]["top_k"]["cases"]
    # The test split holds whole cases, one slide or two each.
    assert 1 <= cases["units"] <= 2 * len({r["group"] for r in rows})

    out = tmp_path / "predictions"
    assert (
        main(
            [
                "predict",
                "--run-dir",
                str(run),
                "--data",
                str(manifest),
                "--out",
                str(out),
                "--quiet",
            ]
        )  # fmt: skip
        == 0
    )
    predicted = _rows(out / "predictions.csv")
    assert len(predicted) == len(rows)
    for n, row in enumerate(rows):
        name = f"{n:04d}_{row['path'].split('/')[-1][:-4]}"
        assert (out / "heatmaps" / f"{name}.png").is_file()
        geojson = json.loads((out / "overlays" / f"{name}.geojson").read_text())
        assert geojson["type"] == "FeatureCollection" and geojson["features"]
        assert (out / "overlays" / f"{name}_attention.tif").is_file()
    assert (out / "evaluation.json").is_file()
