"""Smoke tests of ``benchmarks/``: the smallest configuration of each
benchmark runs in this process, on this run's backend, and writes result
files of the documented structure. No test looks at a measured time: CI
also runs ``python benchmarks/run.py --quick``, which isolates processes.
"""

import ctypes
import json
import sys

import ats_vs_cnn
import compiled
import extract_patches
import isolation
import memory
import mixed_sizes
import numpy as np
import overhead
import pytest
import run as run_all
import timing
from command_line import RunOptions

from ats.training.resources import (
    current_memory_mb,
    peak_memory_mb,
    reset_peak_memory,
)

# A small image that 10 patches without replacement fit: a 15x15 attention
# map over 128x128. Batches of 2: PyTorch fails to train the attention network
# on a batch of one so small map ("slow_conv2d: grad_weight must be
# contiguous"); from 500x500 images (60x60 maps) a batch of one trains.
SIDE, BATCH = 128, 2
STATS = {"median", "min", "max", "n"}


def _check_stats(stats):
    assert set(stats) == STATS
    assert 0 <= stats["min"] <= stats["median"] <= stats["max"]
    assert stats["n"] >= 1


def _check_files(directory, name, headline):
    payload = json.loads((directory / f"{name}.json").read_text())
    assert payload["benchmark"] == name
    assert payload["quick"] is True
    assert payload["machine"]["usable_cores"] >= 1
    assert "keras" in payload["machine"]["versions"]
    markdown = (directory / f"{name}.md").read_text()
    assert markdown.startswith("## ") and headline in markdown
    return payload, markdown


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every benchmark's smallest configuration, run once for the module."""
    directory = tmp_path_factory.mktemp("results")
    options = RunOptions.smoke(directory, compiled.backend())
    payloads = {
        "ats_vs_cnn": ats_vs_cnn.run(options, sides=(SIDE,)),
        "overhead": overhead.run(options, side=SIDE, batch_size=BATCH),
        "extract_patches": extract_patches.run(
            options, configurations=[(2, SIDE, 1, 3, 16)]
        ),
        "mixed_sizes": mixed_sizes.run(options),
    }
    return directory, payloads


def test_ats_vs_cnn_files(results, backend):
    directory, _ = results
    payload, markdown = _check_files(directory, "ats_vs_cnn", "CNN/ATS")
    rows = payload["rows"]
    assert [(r["backend"], r["model"], r["side"]) for r in rows] == [
        (backend, "ats", SIDE),
        (backend, "cnn", SIDE),
    ]
    for row in rows:
        assert (
            row["batch_size"]
            == BATCH
            == ats_vs_cnn.batch_size(SIDE, ats_vs_cnn.QUICK_MAX_BATCH)
        )
        _check_stats(row["step_s"])
        _check_stats(row["per_sample_ms"])
        # The timed steps' peak can fall below the baseline in this shared
        # test process (garbage freed by the first step); the first step's
        # peak cannot.
        memory = row["memory"]
        with_compilation = memory["with_compilation"]
        assert with_compilation["peak_mib"] >= memory["baseline_mib"] > 0
        assert memory["increment_mib"] == pytest.approx(
            memory["peak_mib"] - memory["baseline_mib"]
        )
        assert with_compilation["increment_mib"] >= memory["increment_mib"]
        assert with_compilation["per_sample_mib"] == pytest.approx(
            with_compilation["increment_mib"] / BATCH
        )
    [ratio] = payload["ratios"]
    assert ratio["side"] == SIDE and ratio["time"] > 0
    assert f"| {backend} | {SIDE}x{SIDE} |" in markdown
    png = (directory / "ats_vs_cnn.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_overhead_files(results, backend):
    directory, _ = results
    payload, markdown = _check_files(directory, "overhead", "ATS/pre-extracted")
    [row] = payload["rows"]
    assert row["backend"] == backend and row["side"] == SIDE
    for key in ("ats_ms", "pre_extracted_ms", "round_ratios"):
        _check_stats(row[key])
    assert row["ratio"] == pytest.approx(
        row["ats_ms"]["median"] / row["pre_extracted_ms"]["median"]
    )


def test_extract_patches_files(results, backend):
    directory, _ = results
    payload, _ = _check_files(directory, "extract_patches", "ATS/numpy")
    [row] = payload["rows"]
    assert (row["backend"], row["input"], row["patches"]) == (
        backend,
        f"2x{SIDE}x{SIDE}x1",
        "3 of 16x16",
    )
    _check_stats(row["ats_ms"])
    _check_stats(row["numpy_ms"])


def test_mixed_sizes_files(results, backend):
    directory, _ = results
    payload, _ = _check_files(directory, "mixed_sizes", "ratio mixed/same")
    [row] = payload["rows"]
    assert row["backend"] == backend
    assert len(row["low_shapes"]) == row["batch_size"]
    for key in ("mixed_ms", "same_ms", "round_ratios"):
        _check_stats(row[key])
    assert row["ratio"] == pytest.approx(
        row["mixed_ms"]["median"] / row["same_ms"]["median"]
    )


def test_summary(results):
    _, payloads = results
    text = run_all.summary(payloads, 12.0, "python benchmarks/run.py --quick")
    assert "python benchmarks/run.py --quick" in text
    for table in (
        ats_vs_cnn.summary_table(payloads["ats_vs_cnn"]),
        overhead.summary_table(payloads["overhead"]),
        extract_patches.summary_table(payloads["extract_patches"]),
        mixed_sizes.summary_table(payloads["mixed_sizes"]),
    ):
        assert table in text


def test_failed_configurations_are_listed(results):
    _, payloads = results
    assert run_all.failed_configurations(payloads) == []
    failed = {
        "ats_vs_cnn": {
            "rows": [
                {
                    "backend": "torch",
                    "model": "cnn",
                    "side": 9000,
                    "failed": "exit code -9",
                },
                {"backend": "torch", "model": "ats", "side": 9000, "step_s": {}},
            ]
        }
    }
    assert run_all.failed_configurations(failed) == ["torch cnn 9000"]


def test_the_cnn_is_skipped_where_it_would_not_fit(tmp_path):
    measured = {"side": 1000, "model": "cnn", "memory": {"per_sample_mib": 1024.0}}
    assert ats_vs_cnn.predicted_gib(measured, 2000, 3) == pytest.approx(12.0)
    assert ats_vs_cnn.batch_size(500) == ats_vs_cnn.MAX_BATCH
    assert ats_vs_cnn.batch_size(3000) == 2
    assert ats_vs_cnn.batch_size(12000) == 1
    rows = [
        {
            "backend": "jax",
            "model": "cnn",
            "side": 3000,
            "batch_size": 2,
            "does_not_fit": True,
            "predicted_gib": 40.0,
        }
    ]
    assert ats_vs_cnn.ratios(rows) == []


def test_numpy_baseline_copies_patches():
    x = np.arange(2 * 6 * 6).reshape(2, 6, 6, 1)
    offsets = np.array([[[0, 0], [2, 3]], [[4, 4], [1, 0]]])
    patches = extract_patches.numpy_patches(x, offsets, 2)
    assert patches.shape == (2, 2, 2, 2, 1)
    np.testing.assert_array_equal(patches[0, 1, :, :, 0], x[0, 2:4, 3:5, 0])


def test_time_calls_stops_at_the_budget():
    calls = []
    times = timing.time_calls(
        lambda: calls.append(1), repeats=10, warmup=2, budget_s=0.0, min_repeats=3
    )
    assert len(times) == 3 and len(calls) == 5
    assert timing.summarize([3.0, 1.0, 2.0], 10) == {
        "median": 20.0,
        "min": 10.0,
        "max": 30.0,
        "n": 3,
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_memory_probe_sees_an_allocation():
    probe = memory.MemoryProbe().start()
    block = np.ones(64 * 2**20, dtype=np.uint8)  # 64 MiB, touched
    measured = probe.stop()
    del block
    assert measured["peak_mib"] - measured["baseline_mib"] >= 60


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="malloc_trim is glibc's"
)
def test_release_free_memory_returns_freed_heap_pages():
    """80 MiB of small heap blocks, freed below a live one, stay in the RSS
    until ``release_free_memory`` hands them back."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(4096) for _ in range(20480)]
    for block in blocks:
        ctypes.memset(block, 1, 4096)
    live = libc.malloc(4096)
    for block in blocks:
        libc.free(block)
    before = current_memory_mb()
    assert memory.release_free_memory()
    released = before - current_memory_mb()
    libc.free(live)
    assert released >= 60


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_the_peak_memory_is_reset_to_the_current_memory():
    block = np.ones(64 * 2**20, dtype=np.uint8)  # 64 MiB, touched
    del block
    before = peak_memory_mb()
    assert reset_peak_memory()
    after = peak_memory_mb()
    assert after <= before - 60
    assert after == pytest.approx(current_memory_mb(), abs=8)


def test_subprocess_isolation(backend):
    machine = isolation.run_in_subprocess(
        "reporting", "machine_description", {}, backend
    )
    assert machine["usable_cores"] >= 1
    with pytest.raises(RuntimeError, match="summarize"):
        isolation.run_in_subprocess("timing", "summarize", {"values": []}, backend)
