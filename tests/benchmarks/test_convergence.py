"""Smoke tests of ``benchmarks/convergence.py``: its quick configuration with
one seed trains the three models in this process, on this run's backend, and
writes result files of the documented structure; finished runs are reused; a
time budget stops a run; the curves, targets and ratios are computed as
documented. No test looks at a measured time or error.
"""

import json

import compiled
import convergence
import pytest
from command_line import RunOptions


def _options(output):
    return RunOptions.smoke(output, compiled.backend())


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The quick configuration with one seed, run once for the module."""
    output = tmp_path_factory.mktemp("results")
    work_dir = tmp_path_factory.mktemp("work")
    payload = convergence.run(_options(output), seeds=(0,), work_dir=work_dir)
    return output, work_dir, payload


def test_the_quick_run_writes_its_files(quick, backend):
    output, _, payload = quick
    assert payload == json.loads((output / "convergence.json").read_text())
    assert payload["benchmark"] == "convergence" and payload["quick"] is True
    assert payload["machine"]["usable_cores"] >= 1
    [side] = convergence.QUICK_SIDES
    settings = payload["settings"]
    assert settings["backend"] == backend and settings["sides"] == [side]
    assert settings["data"][str(side)]["n_train"] == convergence.QUICK_N_TRAIN
    rows = payload["rows"]
    assert [(r["backend"], r["side"], r["model"], r["seed"]) for r in rows] == [
        (backend, side, model, 0) for model in convergence.MODELS
    ]
    for row in rows:
        assert row["reused"] is False and row["stopped_by"] == "epochs"
        assert [e["epoch"] for e in row["epochs"]] == [1, 2]
        first, second = row["epochs"]
        assert first["seconds"] == first["train_seconds"] > 0
        assert second["seconds"] == pytest.approx(
            first["train_seconds"] + second["train_seconds"]
        )
        assert row["training_seconds"] == second["seconds"]
        assert row["best_error"] == min(e["test_error"] for e in row["epochs"])
        assert row["config"]["model"] == row["model"]
        assert row["config"]["epochs"] == convergence.QUICK_EPOCHS
    assert [s["model"] for s in payload["summaries"]] == list(convergence.MODELS)
    [ratio] = payload["ratios"]
    cnn_best = next(s for s in payload["summaries"] if s["model"] == "full-cnn")
    assert ratio["target"]["error"] == cnn_best["best_error"]["mean_curve"]
    markdown = (output / "convergence.md").read_text()
    assert markdown.startswith("## ") and "time full CNN / ATS" in markdown
    assert convergence.summary_table(payload) in markdown
    assert (output / "convergence.png").read_bytes().startswith(b"\x89PNG")


def test_finished_runs_are_reused(quick):
    _, work_dir, payload = quick
    again = convergence.run(_options(work_dir / "again"), seeds=(0,), work_dir=work_dir)
    assert [r["reused"] for r in again["rows"]] == [True] * 3
    for before, after in zip(payload["rows"], again["rows"]):
        assert after["epochs"] == before["epochs"]


def test_a_time_budget_stops_a_run(tmp_path):
    payload = convergence.run(
        _options(tmp_path / "results"),
        seeds=(0,),
        models=("low-cnn",),
        epochs=3,
        budget_minutes=1e-6,
        work_dir=tmp_path / "work",
    )
    [row] = payload["rows"]
    assert row["stopped_by"] == "budget" and len(row["epochs"]) == 1
    assert payload["ratios"] == []


def _row(model, seed, errors, seconds_per_epoch):
    epochs = [
        {
            "epoch": k + 1,
            "test_error": error,
            "train_seconds": seconds_per_epoch,
            "test_seconds": 1.0,
            "seconds": seconds_per_epoch * (k + 1),
        }
        for k, error in enumerate(errors)
    ]
    return {
        "side": 250,
        "model": model,
        "seed": seed,
        "epochs": epochs,
        "best_error": min(errors),
        "final_error": errors[-1],
    }


def test_curves_targets_and_ratios():
    rows = [
        _row("ats", 0, [0.9, 0.1, 0.04, 0.03], 10.0),
        _row("full-cnn", 0, [0.9, 0.2, 0.06], 100.0),
        _row("ats", 1, [0.9, 0.5, 0.06, 0.05], 10.0),
        _row("full-cnn", 1, [0.9, 0.1, 0.04, 0.05], 100.0),
        {"side": 250, "model": "low-cnn", "seed": 0, "failed": "exit code -9"},
    ]
    summaries, [ratio] = convergence.summarize(rows)
    ats, cnn = summaries
    # The mean curves stop at the epochs every seed finished.
    assert [p["error"] for p in cnn["curve"]] == pytest.approx([0.9, 0.15, 0.05])
    assert [p["worst_error"] for p in ats["curve"]] == [0.9, 0.5, 0.06, 0.05]
    assert cnn["best_error"] == pytest.approx(
        {"mean": 0.05, "worst": 0.06, "mean_curve": 0.05}
    )
    assert ats["target"]["error"] == pytest.approx(0.05)
    assert ats["time_to_target"] == {
        "seconds": 30.0,
        "epoch": 3,
        "per_seed_seconds": [30.0, 40.0],
        "reached_by": 2,
        "slowest_seconds": 40.0,
    }
    assert cnn["time_to_target"]["seconds"] == 300.0
    assert cnn["time_to_target"]["per_seed_seconds"] == [None, 300.0]
    assert cnn["time_to_target"]["slowest_seconds"] is None
    assert ratio["ratio"] == pytest.approx(10.0)
    # A given target that ATS's mean curve never reaches.
    _, [ratio] = convergence.summarize(rows, target=0.01)
    assert ratio["ats_seconds"] is None and ratio["ratio"] is None


def test_only_the_epochs_within_the_budget_count():
    rows = [{"train_seconds": s} for s in (3.0, 2.0, 0.1)]
    assert convergence.within_budget(rows, 5.0) == rows[:2]
    assert convergence.within_budget(rows, 100.0) == rows
    assert convergence.within_budget(rows, None) == rows
    assert convergence.cache_gib(
        {"height": 500, "width": 500, "scale": 0.25, "n_train": 1024, "n_test": 0},
        ("high",),
    ) == pytest.approx(4 * 1024 * 500**2 / 2**30)
