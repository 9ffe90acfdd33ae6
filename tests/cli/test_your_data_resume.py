"""``ats fit --resume`` after the process was killed (SIGKILL): nothing but
the epoch in progress is lost. Collected on JAX only (tests/cli/conftest.py):
resuming is the same code on every backend."""

import os
import signal
import subprocess
import sys
import time

import keras

from ats.cli import main
from ats.datasets.synthetic_sizes import write_synthetic
from ats.training import RunDirectory


def test_fit_resumes_after_sigkill(tmp_path):
    manifest = write_synthetic(tmp_path / "data", n_images=48, max_side=900, seed=3)
    run_dir = tmp_path / "run"
    fit = ["fit", "--data", str(manifest), "--run-dir", str(run_dir)]
    fit += ["--epochs", "5", "--low-scale", "0.1", "--patch-size", "40x40"]
    fit += ["--n-patches", "3", "--batch-size", "4", "--max-shapes", "3"]
    fit += ["--picture-images", "0", "--quiet"]
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    process = subprocess.Popen(
        [sys.executable, "-m", "ats.cli", *fit],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    run = RunDirectory(run_dir)
    # metrics.csv is written right after the first checkpoint: kill then.
    deadline = time.monotonic() + 600
    while (
        not run.metrics_path.exists()
        and process.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    output = process.communicate()[0].decode()
    assert process.returncode == -signal.SIGKILL, output
    assert run.read_results() is None
    done = [row["epoch"] for row in run.read_metrics()]
    assert 1 <= len(done) < 5 and done == list(range(1, len(done) + 1))

    assert main(["fit", "--resume", "--run-dir", str(run_dir), "--quiet"]) == 0
    assert [row["epoch"] for row in run.read_metrics()] == [1, 2, 3, 4, 5]
    assert run.read_results()["epochs"] == 5
    assert (run_dir / "evaluation.json").is_file()
