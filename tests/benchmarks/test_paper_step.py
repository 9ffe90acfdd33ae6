"""Smoke test of ``benchmarks/paper_step.py``: its smallest configuration runs
in this process, on this run's backend, and writes result files of the
documented structure. No test looks at a measured time."""

import json

import compiled
import paper_step
import pytest
from command_line import RunOptions

STATS = {"median", "min", "max", "n"}
TIMED = {
    "data",
    "data_high",
    "data_low",
    "copy",
    "attention",
    "sampling",
    "extraction",
    "features",
    "forward",
    "step",
    "step_host",
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The quick configuration, run once for the module."""
    directory = tmp_path_factory.mktemp("results")
    options = RunOptions.smoke(directory, compiled.backend())
    return directory, paper_step.run(options)


def test_files_hold_every_part(results, backend):
    directory, payload = results
    assert json.loads((directory / "paper_step.json").read_text()) == payload
    assert payload["benchmark"] == "paper_step" and payload["quick"] is True
    assert payload["settings"]["side"] == paper_step.QUICK_SIDE
    [row] = payload["rows"]
    assert row["backend"] == backend
    assert row["batch_size"] == paper_step.QUICK_BATCH_SIZE
    assert row["low_side"] == round(0.12 * paper_step.QUICK_SIDE)
    assert set(row["timed"]) == TIMED
    for stats in row["timed"].values():
        assert set(stats) == STATS
        assert 0 <= stats["min"] <= stats["median"] <= stats["max"]
    assert list(row["parts"]) == list(paper_step.PARTS)
    assert set(row["shares"]) == set(paper_step.PARTS)


def test_parts_add_up_to_the_step(results):
    _, payload = results
    [row] = payload["rows"]
    median = {name: stats["median"] for name, stats in row["timed"].items()}
    assert sum(row["parts"].values()) == pytest.approx(row["total_ms"])
    assert row["total_ms"] == pytest.approx(
        median["data"] + median["copy"] + median["step"]
    )
    assert sum(row["shares"].values()) == pytest.approx(1.0)
    assert row["parts"]["backward"] == pytest.approx(median["step"] - median["forward"])
    images = paper_step.EPOCH_IMAGES
    assert row["epoch_s"] == pytest.approx(
        (images["train"] * row["total_ms"] + images["test"] * row["test_ms"]) / 1000
    )


def test_report_names_every_part(results, backend):
    directory, _ = results
    markdown = (directory / "paper_step.md").read_text()
    assert markdown.startswith(f"## {paper_step.TITLE}")
    assert f"| part | {backend} ms per image | share |" in markdown
    for label in [*paper_step.PARTS.values(), *paper_step.BESIDE.values()]:
        assert label in markdown
    assert "estimated epoch" in markdown
