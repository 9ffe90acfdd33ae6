"""Smoke test of ``benchmarks/slide_reads.py``: its quick configuration on a
small slide, in this process, writes result files of the documented
structure. No test looks at a measured rate."""

import json

import pytest
from command_line import RunOptions

pytest.importorskip("tifffile", reason="the slide benchmark needs tifffile")
pytest.importorskip("zarr", reason="the slide benchmark needs zarr")
import slide_reads

STATS = {"median", "min", "max", "n"}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    directory = tmp_path_factory.mktemp("results")
    options = RunOptions.smoke(directory, "jax")
    payload = slide_reads.run(
        options, work_dir=tmp_path_factory.mktemp("slides"), side=1024
    )
    return directory, payload


def test_every_reader_at_every_thread_count(results):
    directory, payload = results
    assert json.loads((directory / "slide_reads.json").read_text()) == payload
    assert payload["benchmark"] == "slide_reads" and payload["quick"] is True
    assert payload["settings"]["side"] == 1024
    assert payload["settings"]["slide"]["bytes"] > 0
    rows = payload["rows"]
    assert [(r["reader"], r["threads"]) for r in rows] == [
        (reader, threads)
        for reader in slide_reads.READERS
        for threads in slide_reads.THREADS
    ]
    for row in rows:
        if row["reader"] in ("TiffSource", "tifffile + zarr"):
            assert "error" not in row
        if "error" in row:
            assert row["error"].startswith("cannot open the file")
            continue
        stats = row["reads_per_s"]
        assert set(stats) == STATS and stats["n"] == slide_reads.QUICK_ROUNDS
        assert 0 < stats["min"] <= stats["median"] <= stats["max"]
    ours = [r for r in rows if r["reader"] == "TiffSource"]
    assert all(r["mean_abs_difference"] == 0.0 for r in ours)  # tifffile's pixels


def test_report_has_the_table_and_the_context(results):
    directory, _ = results
    markdown = (directory / "slide_reads.md").read_text()
    assert markdown.startswith(f"## {slide_reads.TITLE}")
    assert "| reader | 1 thread(s), reads/s | 2 thread(s), reads/s |" in markdown
    for reader in slide_reads.READERS:
        assert f"| {reader} |" in markdown
    assert "public figures for OpenSlide" in markdown
