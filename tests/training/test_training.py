"""Training runs: atomic files, checkpoints, evaluation, resume, end to end."""

import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from ats.cli import main
from ats.core import SamplePatches
from ats.datasets.megapixel_mnist import MegapixelMNISTSequence
from ats.experiments import megapixel_mnist as experiment
from ats.models import megapixel_mnist as models
from ats.training import (
    RunDirectory,
    atomic_write,
    compare_runs,
    deterministic_sampling,
    evaluate,
    fit,
    load_checkpoint,
    metrics_row,
    save_checkpoint,
    write_run_report,
)
from ats.training.schedule import cooldown_learning_rate

# A tiny Megapixel MNIST: 100x100 images without noise.
TINY_DATA = dict(
    width=100, height=100, scale=0.25, noise=False, n_train=256, n_test=64, seed=1
)
TINY_TRAIN = dict(
    batch_size=16,
    learning_rate=1e-2,
    n_patches=4,
    patch_size=(50, 50),
    filters=8,
    attention_filters=4,
    picture_images=(),
)


def line_glyphs(per_class=20, seed=0):
    """Easy "digits": class k is a line at k * 18 degrees, jittered.

    Real digits need thousands of steps to learn from image-level labels
    (3 of the 5 digits of an image show its class); these lines need a few
    hundred, which keeps an end-to-end test short.
    """
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), per_class)
    x = np.zeros((len(y), 28, 28), np.uint8)
    t = np.linspace(-12, 12, 97)
    for i, k in enumerate(y):
        angle = np.pi * k / 10 + rng.uniform(-0.05, 0.05)
        row, col = 13.5 + rng.uniform(-1.5, 1.5, 2)
        rows = np.clip(np.rint(row + t * np.sin(angle)), 0, 26).astype(int)
        cols = np.clip(np.rint(col + t * np.cos(angle)), 0, 27).astype(int)
        x[i, rows, cols] = x[i, rows + 1, cols] = 255
    return x, y


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data")
    x, y = line_glyphs()
    np.savez(path / "glyphs.npz", x=x, y=y)
    experiment.make_data(
        "quick",
        path / "data",
        progress=False,
        source=str(path / "glyphs.npz"),
        **TINY_DATA,
    )
    return path / "data"


def compiled_ats(seed=1):
    model = models.ats_model(
        (16, 16, 1),
        (64, 64, 1),
        n_patches=3,
        patch_size=(30, 30),
        filters=4,
        attention_filters=2,
        seed=seed,
    )
    model.compile(
        keras.optimizers.Adam(1e-3),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def toy_batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x_high = rng.random((n, 64, 64, 1)).astype("float32")
    x_low = x_high.reshape(n, 16, 4, 16, 4, 1).mean(axis=(2, 4))
    return [x_low, x_high], rng.integers(0, 10, n).astype("int32")


def variables(model):
    return [
        keras.ops.convert_to_numpy(v.value)
        for v in model.variables + model.optimizer.variables
    ]


def test_atomic_write_replaces_whole_files_only(tmp_path):
    path = tmp_path / "file.txt"
    atomic_write(path, lambda f: f.write(b"old"))

    def fail(f):
        f.write(b"partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.txt"]


def test_run_directory_round_trips_its_files(tmp_path):
    run = RunDirectory(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="config.json"):
        run.read_config()
    run.write_config({"a": [1, 2]})
    rows = [
        {"epoch": 1, "loss": 0.5, "error": 0.25},
        {"epoch": 2, "loss": 0.25, "error": 0.125},
    ]
    run.write_metrics(rows)
    assert run.read_config() == {"a": [1, 2]}
    assert run.read_metrics() == rows
    assert run.read_results() is None and not run.has_checkpoint()


def test_checkpoint_restores_weights_optimizer_and_sampling(tmp_path):
    x, y = toy_batch()
    model = compiled_ats()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, model, {"epoch": 1, "history": []})
    saved = variables(model)

    other = compiled_ats(seed=2)
    assert load_checkpoint(path, other) == {"epoch": 1, "history": []}
    for a, b in zip(saved, variables(other)):
        np.testing.assert_array_equal(a, b)
    assert int(keras.ops.convert_to_numpy(other.optimizer.iterations)) == 2
    # Same state, same sampled patches: training continues identically.
    np.testing.assert_allclose(
        model.predict(x, verbose=0), other.predict(x, verbose=0), rtol=1e-5
    )


def test_checkpoint_of_another_model_is_rejected(tmp_path):
    model = compiled_ats()
    save_checkpoint(tmp_path / "c.npz", model, {})
    other = models.low_res_cnn((16, 16, 1), filters=4)
    other.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="variables"):
        load_checkpoint(tmp_path / "c.npz", other)


def test_top_k_evaluation_is_deterministic_and_sampling_is_not():
    x, y = toy_batch(16)
    model = compiled_ats()
    sampled = [model.predict(x, verbose=0) for _ in range(2)]
    assert not np.allclose(sampled[0], sampled[1])
    with deterministic_sampling(model):
        top_k = [model.predict(x, verbose=0) for _ in range(2)]
        assert all(
            layer.deterministic
            for layer in model.layers
            if isinstance(layer, SamplePatches)
        )
    np.testing.assert_array_equal(top_k[0], top_k[1])
    assert not np.allclose(top_k[0], sampled[0])
    assert not any(
        layer.deterministic
        for layer in model.layers
        if isinstance(layer, SamplePatches)
    )
    assert not np.allclose(model.predict(x, verbose=0), top_k[0])


def test_evaluate_reports_sampled_and_top_k():
    model = compiled_ats()
    x, y = toy_batch(8)

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return tuple(v[4 * i : 4 * i + 4] for v in x), y[4 * i : 4 * i + 4]

    results = evaluate(model, Batches(), verbose=0, draws=3)
    assert set(results) == {"sampled", "top_k"}
    for value in results.values():
        assert 0 <= value["error"] <= 1 and value["loss"] > 0
    # The sampled figures are the mean over the draws.
    errors = [draw["error"] for draw in results["sampled"]["draws"]]
    assert len(errors) == 3
    assert results["sampled"]["error"] == pytest.approx(np.mean(errors))
    with pytest.raises(ValueError, match="`draws`"):
        evaluate(model, Batches(), draws=0)
    # Without an accuracy metric: the loss and the metrics it has.
    top_3 = keras.metrics.SparseTopKCategoricalAccuracy(3, name="top_3")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[top_3])
    results = evaluate(model, Batches(), verbose=0, draws=1)
    assert set(results["top_k"]) == {"loss", "top_3", "seconds"}
    plain = models.low_res_cnn((16, 16, 1), filters=2)
    plain.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])

    class Low(Batches):
        def __getitem__(self, i):
            return x[0][4 * i : 4 * i + 4], y[4 * i : 4 * i + 4]

    assert evaluate(plain, Low(), verbose=0)["top_k"] is None


def test_metrics_row_takes_the_metrics_the_model_has():
    logs = {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.625, "val_accuracy": 0.5}
    row = metrics_row(3, logs, 1.0, 0.5)
    assert row == {
        "epoch": 3,
        "loss": 0.5,
        "error": 0.25,
        "test_loss": 0.625,
        "test_error": 0.5,
        "train_seconds": 1.0,
        "test_seconds": 0.5,
    }
    row = metrics_row(1, {"loss": 2.0, "mae": 0.5}, 1.0, 0.0)
    assert row == {
        "epoch": 1,
        "loss": 2.0,
        "mae": 0.5,
        "train_seconds": 1.0,
        "test_seconds": 0.0,
    }
    with pytest.raises(ValueError, match="loss"):
        metrics_row(1, {"accuracy": 1.0}, 1.0, 0.0)


def test_reports_name_no_data_set_and_need_no_accuracy(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.write_config(
        {
            "experiment": "toy",
            "title": "Toy regression",
            "preset": None,
            "train": {"n_patches": 3, "batch_size": 4, "learning_rate": 0.01},
            "data_dir": str(tmp_path),
            "data_summary": "8 toy images",
        }
    )
    sampled = {"loss": 0.5, "mae": 0.25, "seconds": 1.0, "draws": []}
    run.write_results(
        {
            "model": "ats",
            "preset": None,
            "epochs": 2,
            "parameters": 1234,
            "train_images": 8,
            "test": {"sampled": sampled, "top_k": {"loss": 0.4, "mae": 0.2}},
            "seconds_per_epoch": 2.0,
            "first_epoch_seconds": 5.0,
            "test_seconds_per_epoch": 0.5,
            "peak_memory_mb": 1024.0,
            "environment": {
                "backend": "jax",
                "keras": "3",
                "python": "3.11",
                "cpus": 2,
            },
        }
    )
    text = write_run_report(run).read_text()
    assert text.startswith("# Toy regression: `ats`\n")
    assert "| mae | 0.2500 | 0.2000 |" in text and "8 toy images" in text
    table = compare_runs([run.path], tmp_path / "runs.md")
    assert table.startswith("# Toy regression: the runs side by side")
    assert "| [`ats`](run/report.md) | — | — | 2 of 8 images |" in table


def test_hyperparameters_are_checked_from_their_declaration():
    config = experiment.train_config("quick", "low-cnn", epochs=np.int64(3))
    assert (config.model, config.epochs, config.batch_size) == ("low-cnn", 3, 16)
    assert experiment.TrainConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["patch_size"] == [40, 40]
    for field, value, error, pattern in (
        ("epochs", 0, ValueError, "`epochs` must be an int >= 1, got 0"),
        ("learning_rate", float("nan"), ValueError, "`learning_rate`"),
        ("learning_rate", 0.0, ValueError, "`learning_rate` must be a real number > 0"),
        ("replace", 1, TypeError, "`replace` must be a bool"),
        ("model", "vgg", ValueError, "`model` must be one of"),
        ("patch_size", (50,), ValueError, "`patch_size`"),
        ("train_images", 0, ValueError, "`train_images`"),
    ):
        with pytest.raises(error, match=pattern):
            experiment.TrainConfig(**{field: value})
    assert experiment.TrainConfig(train_images=None).train_images is None
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        config.with_overrides({"lr": 1.0})
    with pytest.raises(ValueError, match="`preset` must be one of"):
        experiment.train_config("huge")


def test_fit_checkpoints_every_epoch_and_resumes(tiny_data, tmp_path):
    data = experiment.MegapixelMNIST.load(tiny_data)
    config = experiment.train_config("quick", epochs=2, **TINY_TRAIN)

    def sequences():
        return [
            MegapixelMNISTSequence(
                data.split(split), 32, shuffle=split == "train", views=("low", "high")
            )
            for split in ("train", "test")
        ]

    run = RunDirectory(tmp_path / "run")
    model = experiment.build_model(config, data.config)
    seen = []
    first_train, first_test = sequences()
    history = fit(
        model,
        first_train,
        first_test,
        run,
        epochs=1,
        on_epoch_end=seen.append,
        verbose=0,
    )
    assert seen == [1] and [row["epoch"] for row in history] == [1]
    assert run.read_metrics() == history

    resumed = experiment.build_model(config, data.config)
    train_data, test_data = sequences()
    history = fit(
        resumed,
        train_data,
        test_data,
        run,
        epochs=2,
        resume=True,
        on_epoch_end=seen.append,
        verbose=0,
    )
    assert seen == [1, 2]
    assert [row["epoch"] for row in run.read_metrics()] == [1, 2]
    # The shuffling continued: one epoch further than after the first run.
    assert train_data.epoch == first_train.epoch + 1


def test_fit_sets_the_learning_rate_of_every_epoch_also_when_resumed(
    tiny_data, tmp_path
):
    data = experiment.MegapixelMNIST.load(tiny_data)
    config = experiment.train_config("quick", epochs=3, **TINY_TRAIN)
    schedule = cooldown_learning_rate(0.01, epochs=3, cooldown_epochs=2)
    run = RunDirectory(tmp_path / "run")
    rates = []

    def train(epochs, resume):
        model = experiment.build_model(config, data.config)
        sequence = MegapixelMNISTSequence(
            data.split("train"), 32, views=("low", "high")
        )
        fit(
            model,
            sequence,
            None,
            run,
            epochs=epochs,
            resume=resume,
            on_epoch_end=lambda epoch: rates.append(
                float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
            ),
            verbose=0,
            steps_per_epoch=1,
            learning_rate=schedule,
        )

    train(1, resume=False)
    train(3, resume=True)  # the checkpoint restores the last epoch's rate
    np.testing.assert_allclose(rates, [0.01, 0.01 * 2 / 3, 0.01 / 3], rtol=1e-6)


def test_cached_batches_equal_rendered_ones(tiny_data):
    split = experiment.MegapixelMNIST.load(tiny_data).split("test")
    plain, cached = (
        MegapixelMNISTSequence(split, 24, shuffle=True, cache=cache)
        for cache in (False, True)
    )
    for _ in range(2):
        for i in range(len(plain)):
            (low, high), y = plain[i]
            (cached_low, cached_high), cached_y = cached[i]
            np.testing.assert_array_equal(low, cached_low)
            np.testing.assert_array_equal(high, cached_high)
            np.testing.assert_array_equal(y, cached_y)
        plain.on_epoch_end()
        cached.on_epoch_end()
    with pytest.raises(TypeError, match="`cache` must be a bool"):
        MegapixelMNISTSequence(split, cache="yes")


def test_tiny_end_to_end_training_beats_chance(tiny_data, tmp_path):
    results = experiment.train(
        tiny_data, tmp_path / "run", epochs=16, verbose=0, **TINY_TRAIN
    )
    assert results["epochs"] == 16
    # Chance is 90% error; this reaches 40 to 55% (64 test images).
    assert results["test"]["sampled"]["error"] <= 0.65
    assert results["test"]["top_k"]["error"] <= 0.65


def test_resume_after_sigkill_loses_at_most_the_epoch_in_progress(tiny_data, tmp_path):
    run_dir = tmp_path / "run"
    train = [
        "mnist",
        "train",
        "--data",
        str(tiny_data),
        "--run-dir",
        str(run_dir),
        "--epochs",
        "6",
        "--quiet",
        "--batch-size",
        "4",
        "--n-patches",
        "2",
        "--patch-size",
        "30x30",
        "--filters",
        "4",
    ]
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    process = subprocess.Popen(
        [sys.executable, "-m", "ats.cli", *train],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    run = RunDirectory(run_dir)
    # metrics.csv is written right after the first checkpoint: kill the run
    # then, in its second epoch (or a later one if this process is slow).
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
    assert run.read_results() is None  # killed before the end
    done = [row["epoch"] for row in run.read_metrics()]
    assert 1 <= len(done) < 6 and done == list(range(1, len(done) + 1))

    assert (
        main(["mnist", "train", "--resume", "--run-dir", str(run_dir), "--quiet"]) == 0
    )
    assert [row["epoch"] for row in run.read_metrics()] == [1, 2, 3, 4, 5, 6]
    assert run.read_results()["epochs"] == 6
