"""Attention sampling on each backend's own distribution engine.

The active backend's engine runs on two CPU devices in a process of its own
(``tests/distribute/scenario.py``), since devices must be set up before the
backend starts: JAX ``keras.distribution.DataParallel`` on two host devices,
TensorFlow ``MirroredStrategy`` on two logical CPUs, PyTorch
``DistributedDataParallel`` with two gloo processes under torchrun. The tests
check its JSON report; the rest test ``ats.distribute`` in this process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import ats.distribute as distribute
from ats.core import sample, seeds

BACKEND = keras.backend.backend()
ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).resolve().parent / "scenario.py"
ENGINES = {"jax": "data_parallel", "tensorflow": "mirrored", "torch": "ddp"}

# Float32 gradients of one step summed in another order on two devices.
GRADIENT_ATOL = 1e-5


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The scenario's JSON report for the active backend's engine."""
    out = tmp_path_factory.mktemp("distributed") / "report.json"
    env = {
        **os.environ,
        "KERAS_BACKEND": BACKEND,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    command = [sys.executable, str(SCENARIO), str(out)]
    if BACKEND == "torch":
        env["OMP_NUM_THREADS"] = "1"
        command[1:1] = [
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
        ]
    completed = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    if completed.returncode != 0 or not out.exists():
        pytest.fail(f"{' '.join(command)} failed:\n{completed.stderr[-6000:]}")
    return json.loads(out.read_text())


def test_runs_on_the_backends_own_engine(report):
    assert report["strategy"] == ENGINES[BACKEND]
    assert report["num_replicas"] == 2


def test_trains_with_finite_decreasing_loss(report):
    losses = report["train_losses"]
    assert len(losses) == 6 and np.isfinite(losses).all()
    assert losses[-1] < losses[0]
    assert report["replica_weight_diff"] == 0.0


def test_one_step_gradients_equal_one_device(report):
    gradients = report["gradients"]
    assert gradients["max_abs"] > 1e-2  # the step moves the weights
    assert gradients["max_abs_diff"] <= GRADIENT_ATOL


def test_uneven_last_batch_and_predict(report):
    uneven = report["uneven"]
    assert np.isfinite(uneven["fit_losses"]).all()
    assert uneven["accuracy"] == pytest.approx(uneven["expected_accuracy"], abs=1e-6)
    assert uneven["predict_shape"] == [7, 2]
    assert uneven["predict_max_abs_diff"] <= GRADIENT_ATOL


def test_replicas_draw_different_positions(report):
    positions = np.array(report["samples"]["positions"])
    assert positions.shape == (2, 4, 4)
    # The same image everywhere: replicas with the same noise would draw the
    # same positions for their i-th examples.
    for first, second in zip(*positions):
        assert not np.array_equal(first, second)


def test_a_run_is_reproducible_from_its_seed(report):
    np.testing.assert_array_equal(
        report["samples"]["positions"], report["samples"]["again"]
    )


def test_training_commands_run_on_the_engine(report):
    commands = report["commands"]
    assert commands["exit_status"] == [[0, 0]] * (2 if BACKEND == "torch" else 1)
    mnist = commands["mnist"]
    assert commands["mnist_config"]["distribution"] == mnist["distribution"]
    assert mnist["distribution"] == {
        "strategy": ENGINES[BACKEND],
        "num_replicas": 2,
        "num_processes": 2 if BACKEND == "torch" else 1,
    }
    assert mnist["epochs"] == 2  # one, then one more after --resume
    for mode in ("sampled", "top_k"):
        assert 0 <= mnist["test"][mode]["error"] <= 1
        assert np.isfinite(mnist["test"][mode]["loss"])


def test_lazy_path_each_process_reads_its_own_images(report):
    commands = report["commands"]
    # 8 training images: a block of 4 per PyTorch process; one process
    # feeding both devices on JAX and TensorFlow.
    assert commands["lazy_images"] == ([4, 4] if BACKEND == "torch" else [8])
    # Global batches of 4 (3 test images padded to 4 on one process): each
    # read gets one device's or process's examples.
    assert max(commands["lazy_read_sizes"]) == 2
    lazy = commands["lazy"]
    assert lazy["distribution"]["strategy"] == ENGINES[BACKEND]
    assert lazy["epochs"] == 1
    assert 0 <= lazy["test"]["sampled"]["error"] <= 1


def draw(seed):
    """Positions drawn in this process from a fixed attention map."""
    logits = np.random.default_rng(0).normal(size=(3, 36)).astype("float32")
    attention = keras.ops.reshape(keras.ops.softmax(logits), (3, 6, 6))
    return keras.ops.convert_to_numpy(sample(4, attention, seed=seed)[0])


def test_not_distributed_is_replica_zero():
    assert distribute.replica_index() == 0
    assert distribute.batch_multiple() == 1
    generator = keras.random.SeedGenerator(3)
    assert distribute.replica_seed(generator) is generator
    assert distribute.replica_seed(3) == 3


@pytest.mark.parametrize("seed", ["int", "generator"])
def test_replica_index_is_folded_into_the_seed(monkeypatch, seed):
    def drawn_on(replica):
        monkeypatch.setattr(seeds, "replica_index", lambda: replica)
        return draw(3 if seed == "int" else keras.random.SeedGenerator(3))

    replica_0, replica_1 = drawn_on(0), drawn_on(1)
    assert not np.array_equal(replica_0, replica_1)
    np.testing.assert_array_equal(drawn_on(1), replica_1)
    np.testing.assert_array_equal(drawn_on(0), replica_0)
    monkeypatch.undo()
    np.testing.assert_array_equal(
        drawn_on(0), draw(3 if seed == "int" else keras.random.SeedGenerator(3))
    )


if BACKEND == "jax":

    def test_jax_draws_the_positions_one_device_draws(report):
        np.testing.assert_array_equal(
            np.reshape(report["samples"]["positions"], (8, 4)),
            report["samples"]["one_device"],
        )

    def test_model_parallel_layout_trains(report):
        parallel = report["model_parallel"]
        assert np.isfinite(parallel["losses"]).all()
        assert any(path.endswith("kernel") for path in parallel["sharded"])

    def test_jax_cannot_replicate_positions():
        with pytest.raises(ValueError, match="enabled=False"):
            distribute.set_independent_sampling(False)
        assert distribute.independent_sampling()

    def test_simulate_cpu_devices_after_jax_started_is_an_error():
        keras.ops.ones(1)
        with pytest.raises(RuntimeError, match="before JAX"):
            distribute.simulate_cpu_devices(2)
else:

    def test_replicas_draw_the_same_positions_when_asked(report):
        first, second = np.array(report["samples"]["replicated"])
        np.testing.assert_array_equal(first, second)

    def test_replicated_sampling_when_asked(monkeypatch):
        monkeypatch.setattr(seeds, "replica_index", lambda: 1)
        assert distribute.replica_seed(3) != 3
        try:
            distribute.set_independent_sampling(False)
            assert distribute.replica_seed(3) == 3
        finally:
            distribute.set_independent_sampling(True)

    def test_multi_host_arguments_are_for_jax_only():
        with pytest.raises(ValueError, match="`process_id`"):
            distribute.configure("none", process_id=1)


if BACKEND == "tensorflow":

    def test_simulate_cpu_devices_after_tensorflow_started_is_an_error():
        keras.ops.ones(1)
        with pytest.raises(RuntimeError, match="before TensorFlow"):
            distribute.simulate_cpu_devices(2)


if BACKEND == "torch":

    def test_torch_simulates_devices_with_processes():
        with pytest.raises(ValueError, match="torchrun"):
            distribute.simulate_cpu_devices(2)

    def test_ddp_outside_torchrun_is_an_error(monkeypatch):
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            monkeypatch.delenv(name, raising=False)
        with pytest.raises(RuntimeError, match="torchrun"):
            distribute.configure("ddp")


def test_configure_none_is_one_device():
    setup = distribute.configure("none")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    data = (np.zeros((5, 2)), np.zeros(5))
    with setup.scope():
        assert setup.wrap(model) is model and setup.unwrap(model) is model
        assert setup.shard(data) is data
    assert (setup.num_replicas, setup.num_processes, setup.process_index) == (1, 1, 0)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"strategy": "horovod"}, "strategy"),
        ({"strategy": 2}, "strategy"),
        ({"strategy": "none", "model_parallel": 0}, "model_parallel"),
        ({"strategy": "none", "model_parallel": 2}, "model_parallel"),
        ({"strategy": "none", "devices": "all"}, "devices"),
    ],
)
def test_configure_errors_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`|{argument}="):
        distribute.configure(**kwargs)


def test_simulate_cpu_devices_checks_its_argument():
    with pytest.raises(ValueError, match="`count`"):
        distribute.simulate_cpu_devices(0)


def test_shard_examples_and_drop_remainder():
    x, y = np.arange(11)[:, None], np.arange(11)
    first, second = (distribute.shard_examples((x, y), i, 2) for i in (0, 1))
    np.testing.assert_array_equal(first[1], np.arange(5))
    np.testing.assert_array_equal(second[1], np.arange(5, 10))
    kept = distribute.drop_remainder({"x": x, "y": y}, multiple=4)
    assert len(kept["x"]) == len(kept["y"]) == 8
    with pytest.raises(ValueError, match="`multiple`"):
        distribute.drop_remainder((x, y), multiple=0)
    with pytest.raises(ValueError, match="same number of examples"):
        distribute.drop_remainder((x, y[:5]), multiple=2)


class ProcessOf(distribute.Setup):
    """The set-up of process ``index`` of ``count`` (without an engine)."""

    shards_data = True

    def __init__(self, index, count, shards_evaluation=True):
        self.process_index, self.num_processes = index, count
        self.shards_evaluation = shards_evaluation


def test_processes_feed_blocks_of_the_data_and_of_the_batch():
    x = np.arange(11)
    blocks = [ProcessOf(i, 2).shard(x) for i in (0, 1)]
    np.testing.assert_array_equal(blocks[0], np.arange(5))
    np.testing.assert_array_equal(blocks[1], np.arange(5, 10))
    assert ProcessOf(1, 2).shard_slice(11) == slice(5, 10)
    # PyTorch DDP evaluates everything in every process.
    ddp = ProcessOf(1, 2, shards_evaluation=False)
    assert ddp.shard_slice(11) == slice(5, 10)
    assert ddp.shard_slice(11, training=False) == slice(0, 11)
    assert ddp.shard(x, training=False) is x
    assert ProcessOf(1, 2).local_batch_size(8) == 4
    with pytest.raises(ValueError, match="multiple of the number of proc"):
        ProcessOf(0, 3).local_batch_size(8)
    with pytest.raises(ValueError, match="fewer than the processes"):
        ProcessOf(0, 3).shard_slice(2)
    one = distribute.Setup()
    assert one.shard_slice(11) == slice(0, 11)
    assert one.local_batch_size(8) == 8
    assert one.describe() == {"strategy": "none", "num_replicas": 1, "num_processes": 1}


def test_even_batches_only_when_the_batch_is_split(monkeypatch):
    dataset = Batches(np.zeros((5, 2)), np.zeros(5), batch_size=2)
    assert distribute.even_batches(dataset) is dataset
    monkeypatch.setattr(distribute.batches, "batch_multiple", lambda: 2)
    training = distribute.even_batches(dataset)
    evaluation = distribute.even_batches(dataset, training=False)
    assert [len(training[i][1]) for i in range(len(training))] == [2, 2]
    assert [len(evaluation[i][1]) for i in range(len(evaluation))] == [2, 2, 2]
    np.testing.assert_array_equal(evaluation[2][2], [1, 0])


def test_predict_pads_to_the_batch_multiple(monkeypatch):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    x = np.random.default_rng(0).normal(size=(7, 2)).astype("float32")
    expected = model.predict(x, verbose=0)
    monkeypatch.setattr(distribute.batches, "batch_multiple", lambda: 3)
    predicted = distribute.predict(model, x, batch_size=3, verbose=0)
    np.testing.assert_allclose(predicted, expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="`batch_size`"):
        distribute.predict(model, x, batch_size=4)


class Batches(keras.utils.PyDataset):
    """Batches ``(x, y)`` of arrays, the last one partial."""

    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.y) // self.batch_size)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[part], self.y[part]


def test_even_batches_drop_or_pad_the_remainder():
    x, y = np.arange(9, dtype="float32")[:, None], np.arange(9.0)
    dropped = distribute.EvenBatches(Batches(x, y, 4), multiple=3)
    assert len(dropped) == 2  # 4, 4 -> 3, 3; the last batch of 1 goes
    np.testing.assert_array_equal(dropped[1][1], [4, 5, 6])
    padded = distribute.EvenBatches(Batches(x, y, 4), multiple=3, remainder="pad")
    assert len(padded) == 3
    last_x, last_y, weights = padded[2]
    np.testing.assert_array_equal(last_x[:, 0], [8, 8, 8])
    np.testing.assert_array_equal(weights, [1, 0, 0])
    np.testing.assert_array_equal(padded[0][2], [1, 1, 1, 1, 0, 0])


def test_padded_batches_evaluate_like_the_arrays():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 2)).astype("float32")
    y = rng.normal(size=(9, 1)).astype("float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse", weighted_metrics=["mae"])
    expected = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)["mae"]
    padded = distribute.EvenBatches(Batches(x, y, 4), multiple=3, remainder="pad")
    assert model.evaluate(padded, verbose=0, return_dict=True)["mae"] == pytest.approx(
        expected, rel=1e-5
    )


def test_even_batches_errors_name_the_argument():
    data = Batches(np.zeros((4, 1)), np.zeros(4), 2)
    with pytest.raises(TypeError, match="`dataset`"):
        distribute.EvenBatches([(np.zeros(2), np.zeros(2))])
    with pytest.raises(ValueError, match="`multiple`"):
        distribute.EvenBatches(data, multiple=0)
    with pytest.raises(ValueError, match="`remainder`"):
        distribute.EvenBatches(data, remainder="wrap")
