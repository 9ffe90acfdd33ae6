"""Runs and data under misuse (issue 12): nothing lost, nothing silent.

Every refusal is one line ``ats: error: ...`` naming the file or argument,
exit status 1, and leaves the run directory (or the absence of one) as it
was.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tiny_run

from ats.cli import main
from ats.experiments import megapixel_mnist as experiment
from ats.training import (
    NonFiniteError,
    RunDirectory,
    RunFileError,
    RunLockedError,
    fit,
    load_checkpoint,
    save_checkpoint,
    write_json,
)

BACKEND = keras.backend.backend()
TINY_DATA = tiny_run.DATA
TINY_TRAIN = [*tiny_run.TRAIN, "--picture-images", "0", "--quiet"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("safety") / "data"
    assert main(["mnist", "make-data", "--out", str(path), *TINY_DATA]) == 0
    return path


@pytest.fixture(scope="module")
def finished_run(data_dir, tmp_path_factory):
    """A run of one epoch, finished (copy it before changing it)."""
    path = tmp_path_factory.mktemp("finished") / "run"
    train = ["mnist", "train", "--data", str(data_dir), "--run-dir", str(path)]
    assert main([*train, *TINY_TRAIN]) == 0
    return path


@pytest.fixture
def run_copy(finished_run, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(finished_run, path)
    return path


def snapshot(directory):
    """Every file of ``directory`` (recursively) and its bytes."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def error_line(capsys):
    """The one stderr line of a refused command (checked to be one line)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("ats:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "allow_pickle" not in err
    return lines[0]


def train_args(data_dir, run_dir, *extra):
    return [
        "mnist",
        "train",
        "--data",
        str(data_dir),
        "--run-dir",
        str(run_dir),
        *TINY_TRAIN,
        *extra,
    ]


# Data that can be lost or corrupted.


def test_resume_without_checkpoint_refuses_instead_of_starting_over(run_copy, capsys):
    (run_copy / "checkpoint.npz").unlink()
    before = snapshot(run_copy)
    resume = ["mnist", "train", "--resume", "--run-dir", str(run_copy), "--quiet"]
    assert main(resume) == 1
    line = error_line(capsys)
    assert "checkpoint.npz: missing" in line and "start over" in line
    assert snapshot(run_copy) == before
    # A started run (metrics, no results) is refused too.
    (run_copy / "results.json").unlink()
    assert main(resume) == 1
    assert "1 finished epoch(s)" in error_line(capsys)
    # A run interrupted in its first epoch (config only) starts over.
    (run_copy / "metrics.csv").unlink()
    assert main([*resume, "--epochs", "1"]) == 0
    assert RunDirectory(run_copy).read_results()["epochs"] == 1


LOCK_HOLDER = """
import sys, time
from ats.training import RunDirectory
with RunDirectory(sys.argv[1]).lock():
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_second_process_is_refused_and_a_killed_ones_lock_is_released(
    run_copy, capsys
):
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(run_copy)],
        stdout=subprocess.PIPE,
        env={**os.environ, "KERAS_BACKEND": BACKEND},
    )
    try:
        assert holder.stdout.readline().strip() == b"locked"
        with (
            pytest.raises(RunLockedError, match="in use by another process"),
            RunDirectory(run_copy).lock(),
        ):
            pass
        before = snapshot(run_copy)
        resume = ["mnist", "train", "--resume", "--run-dir", str(run_copy)]
        assert main([*resume, "--epochs", "2", "--quiet"]) == 1
        assert "in use by another process" in error_line(capsys)
        assert snapshot(run_copy) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The lock file stays, but the killed process's lock went with it.
    assert (run_copy / ".lock").exists()
    with RunDirectory(run_copy).lock():
        pass
    assert main([*resume, "--epochs", "2", "--quiet"]) == 0
    assert [r["epoch"] for r in RunDirectory(run_copy).read_metrics()] == [1, 2]


# Accepted nonsense.


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--learning-rate", "nan"),
        ("--learning-rate", "inf"),
        ("--clipnorm", "inf"),
        ("--regularizer-strength", "nan"),
    ],
)
def test_non_finite_hyperparameters_are_refused(
    data_dir, tmp_path, capsys, flag, value
):
    assert main(train_args(data_dir, tmp_path / "run", flag, value)) == 1
    assert f"`{flag[2:].replace('-', '_')}` must be" in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_a_non_finite_loss_stops_the_run(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(data_dir, run, "--learning-rate", "1e38")) == 1
    line = error_line(capsys)
    assert "epoch 1: loss is nan" in line and "training stopped" in line
    assert not (run / "results.json").exists()
    assert not (run / "checkpoint.npz").exists() and not (run / "metrics.csv").exists()


def test_fit_keeps_the_last_finite_epoch(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((8, 2), "float32")

    class Batches(keras.utils.PyDataset):
        bad = False

        def __len__(self):
            return 2

        def __getitem__(self, i):
            y = np.full((4, 1), np.nan if self.bad else 1.0, "float32")
            return x[4 * i : 4 * i + 4], y

    batches = Batches()

    def spoil(epoch):  # the labels of the epochs after the first are NaN
        batches.bad = True

    run = RunDirectory(tmp_path / "run")
    with pytest.raises(
        NonFiniteError, match="epoch 2: loss is nan.*checkpoint of epoch 1"
    ):
        fit(model, batches, None, run, epochs=3, on_epoch_end=spoil, verbose=0)
    assert [row["epoch"] for row in run.read_metrics()] == [1]
    assert load_checkpoint(run.checkpoint_path, model)["epoch"] == 1


def test_results_never_hold_nan(tmp_path):
    write_json(tmp_path / "r.json", {"error": float("nan"), "x": [1.0, float("inf")]})
    text = (tmp_path / "r.json").read_text()
    assert json.loads(text) == {"error": None, "x": [1.0, None]}


def test_labels_outside_the_classes_are_refused(data_dir, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(data_dir, bad)
    with np.load(bad / "train.npz") as arrays:
        arrays = dict(arrays)
    arrays["labels"][3] = 12
    np.savez_compressed(bad / "train.npz", **arrays)
    assert main(train_args(bad, tmp_path / "run")) == 1
    line = error_line(capsys)
    assert "train.npz: labels must be ints in [0, 10), got 12" in line
    assert not (tmp_path / "run").exists()


def test_training_checks_the_labels_an_experiment_gives(
    data_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(
        experiment.EXPERIMENT, "labels", lambda data, split: np.array([0, 10, 2])
    )
    with pytest.raises(ValueError, match=r"train labels must be classes in \[0, 10\)"):
        experiment.train(data_dir, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


# Errors a user cannot act on.


@pytest.mark.parametrize("damage", ["text", "truncated", "no state"])
def test_a_bad_checkpoint_is_one_line_and_changes_nothing(run_copy, capsys, damage):
    path = run_copy / "checkpoint.npz"
    if damage == "text":
        path.write_text("not a checkpoint\n")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        with np.load(path) as arrays:
            arrays = {k: v for k, v in arrays.items() if k != "state"}
        np.savez(path, **arrays)
    before = snapshot(run_copy)
    for command in (
        ["mnist", "evaluate", "--run-dir", str(run_copy), "--quiet"],
        ["mnist", "train", "--resume", "--run-dir", str(run_copy), "--quiet"],
        ["mnist", "visualize", "--run-dir", str(run_copy)],
    ):
        assert main(command) == 1
        line = error_line(capsys)
        assert f"{path}: not a" in line and "checkpoint" in line
        assert snapshot(run_copy) == before


def test_load_checkpoint_leaves_the_model_as_it_was_on_a_bad_file(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    path = tmp_path / "c.npz"
    save_checkpoint(path, model, {"epoch": 1})
    with np.load(path) as arrays:
        arrays = dict(arrays)
    del arrays[f"optimizer_{len(model.optimizer.variables) - 1}"]
    np.savez(path, **arrays)
    model.layers[0].kernel.assign(np.full((2, 1), 7.0, "float32"))
    with pytest.raises(RunFileError, match="an array is missing"):
        load_checkpoint(path, model)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.layers[0].kernel), 7)


@pytest.mark.parametrize("name", ["config.json", "metrics.csv", "results.json"])
def test_a_corrupt_run_file_is_named(run_copy, capsys, name):
    path = run_copy / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = snapshot(run_copy)
    command = {
        "config.json": ["mnist", "train", "--resume", "--run-dir", str(run_copy)],
        "metrics.csv": ["mnist", "visualize", "--run-dir", str(run_copy)],
        "results.json": ["mnist", "evaluate", "--run-dir", str(run_copy)],
    }[name]
    assert main([*command, *(["--quiet"] if "visualize" not in command else [])]) == 1
    assert error_line(capsys).startswith(f"ats: error: {path}: not ")
    assert snapshot(run_copy) == before


def test_an_empty_or_truncated_data_set_is_named(data_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(train_args(empty, tmp_path / "run")) == 1
    assert "no config.json: not a Megapixel MNIST data set" in error_line(capsys)
    truncated = tmp_path / "truncated"
    shutil.copytree(data_dir, truncated)
    train_npz = truncated / "train.npz"
    train_npz.write_bytes(train_npz.read_bytes()[:-40])
    assert main(train_args(truncated, tmp_path / "run")) == 1
    line = error_line(capsys)
    assert f"{train_npz}: " in line and "truncated or corrupt" in line
    no_images = tmp_path / "no_images"
    tiny = [*TINY_DATA]
    tiny[tiny.index("--n-train") + 1] = "0"
    assert main(["mnist", "make-data", "--out", str(no_images), *tiny]) == 0
    capsys.readouterr()
    assert main(train_args(no_images, tmp_path / "run")) == 1
    assert "the data set has no training images" in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(
    run_copy, capsys, monkeypatch
):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    before = snapshot(run_copy)
    monkeypatch.setattr(np, "savez", full)
    resume = ["mnist", "train", "--resume", "--run-dir", str(run_copy), "--quiet"]
    assert main([*resume, "--epochs", "2"]) == 1
    line = error_line(capsys)
    assert line == (
        f"ats: error: cannot write {run_copy / 'checkpoint.npz'}: "
        "No space left on device"
    )
    after = snapshot(run_copy)
    # Only config.json (the new total of epochs) and the picture of the lost
    # epoch changed; no temporary file.
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"config.json", "pictures/epoch_002.png"}
    assert set(before) <= set(after) <= changed | set(before)


def test_evaluate_prints_before_writing_to_a_read_only_run(
    run_copy, capsys, monkeypatch
):
    import ats.training.run as run_module

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    before = snapshot(run_copy)
    monkeypatch.setattr(run_module.tempfile, "mkstemp", read_only)
    assert main(["mnist", "evaluate", "--run-dir", str(run_copy), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "test error:" in captured.out
    assert captured.err.strip() == (
        f"ats: error: cannot write {run_copy / 'results.json'}: Permission denied"
    )
    assert snapshot(run_copy) == before


def wait_for(path, process, seconds=600):
    deadline = time.monotonic() + seconds
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def cli(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "ats.cli", *args],
        env={**os.environ, "KERAS_BACKEND": BACKEND},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_ctrl_c_says_what_was_saved_and_how_to_resume(data_dir, tmp_path):
    run = tmp_path / "run"
    process = cli(*train_args(data_dir, run, "--epochs", "50"))
    wait_for(run / "metrics.csv", process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    err = err.decode()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert f"ats: interrupted: {run} keeps the checkpoint and metrics of epoch" in err
    assert f"resume with `ats mnist train --resume --run-dir {run}`" in err
    assert not (run / "results.json").exists()


# A bad argument found late leaves no directory behind.


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--patch-size", "8x8"], "`patch_size` must be"),
        (["--n-patches", "10000"], "`n_patches` (10000) must be at most"),
    ],
)
def test_late_bad_arguments_leave_no_directory(
    data_dir, tmp_path, capsys, extra, message
):
    assert main(train_args(data_dir, tmp_path / "run", *extra)) == 1
    assert message in error_line(capsys)
    assert not (tmp_path / "run").exists()


# Reproducibility.


def test_a_killed_and_resumed_deterministic_run_repeats_an_uninterrupted_one(
    data_dir, tmp_path
):
    def train(run_dir):
        extra = ("--epochs", "4", "--deterministic", "--workers", "2")
        return train_args(data_dir, run_dir, *extra)

    assert main(train(tmp_path / "whole")) == 0
    killed = tmp_path / "killed"
    process = cli(*train(killed))
    wait_for(killed / "metrics.csv", process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "results.json").exists()
    done = len(RunDirectory(killed).read_metrics())
    assert 1 <= done < 4
    assert (
        main(["mnist", "train", "--resume", "--run-dir", str(killed), "--quiet"]) == 0
    )

    def metrics(run_dir):
        return [
            {k: v for k, v in row.items() if not k.endswith("_seconds")}
            for row in RunDirectory(run_dir).read_metrics()
        ]

    assert len(metrics(killed)) == 4
    assert metrics(killed) == metrics(tmp_path / "whole")


def test_deterministic_mode_reads_batches_in_the_training_thread(data_dir):
    data = experiment.MegapixelMNIST.load(data_dir)
    for deterministic, workers in ((False, 2), (True, 1)):
        config = experiment.train_config(
            "quick", workers=2, deterministic=deterministic
        )
        assert config.batch_workers == workers
        sequence = experiment.EXPERIMENT.sequence(data, "train", config)
        assert sequence.workers == workers


def test_a_run_of_another_experiment_is_named(run_copy, capsys):
    before = snapshot(run_copy)
    resume = ["gigapixel", "train", "--resume", "--run-dir", str(run_copy), "--quiet"]
    assert main(resume) == 1
    line = error_line(capsys)
    assert "config.json: a run of Megapixel MNIST, not of Gigapixel MNIST" in line
    assert snapshot(run_copy) == before
