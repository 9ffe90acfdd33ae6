"""Tests of the Megapixel MNIST data set (small canvases, offline digits)."""

import json

import keras
import numpy as np
import pytest

import ats.datasets
from ats.datasets import megapixel_mnist as mm
from ats.datasets.megapixel_mnist import (
    MegapixelMNIST,
    MegapixelMNISTConfig,
    MegapixelMNISTSequence,
    digits,
    downscale,
)

SMALL = dict(
    width=200, height=200, scale=0.25, n_noise=10, n_train=40, n_test=20, seed=3
)


@pytest.fixture(scope="module")
def data():
    return MegapixelMNIST.generate(MegapixelMNISTConfig(**SMALL), progress=False)


def _splits(dataset):
    return [dataset.split(name) for name in mm.SPLITS]


def _describe(dataset):
    """All description arrays of a data set, by name."""
    arrays = {"digit_pixels": dataset.digit_pixels}
    for split in _splits(dataset):
        for key in ("labels", "digit_indices", "positions", "noise_strokes"):
            arrays[f"{split.name}.{key}"] = getattr(split, key)
    return arrays


def test_package_exports_submodule():
    assert ats.datasets.megapixel_mnist is mm


def test_paper_config():
    config = MegapixelMNISTConfig.paper()
    assert (config.width, config.height, config.scale) == (1500, 1500, 0.12)
    assert (config.n_train, config.n_test, config.n_noise, config.noise) == (
        5000,
        1000,
        50,
        True,
    )
    assert config.low_shape == (180, 180, 1)
    assert config.high_shape == (1500, 1500, 1)
    assert MegapixelMNISTConfig.paper(seed=4).seed == 4


def test_split_sizes(data):
    assert len(data.split("train")) == 40
    assert len(data.split("test")) == 20


def test_three_target_digits_and_two_others(data):
    for split in _splits(data):
        classes, labels = split.digit_classes, split.labels
        assert classes.shape == (len(split), 5)
        assert np.all(classes[:, :3] == labels[:, None])
        assert np.all(classes[:, 3:] != labels[:, None])
        assert np.all(np.isin(labels, np.arange(10)))
        # The three target digits are three different MNIST digits.
        assert all(len(set(row[:3])) == 3 for row in split.digit_indices.tolist())


def test_render_returns_label_and_draws_the_digits(data):
    split = data.split("train")
    for i in range(3):
        x_low, x_high, y = split.render(i)
        assert y == split.labels[i] and isinstance(y, int)
        for (r0, c0, r1, c1), digit in zip(split.boxes(i), split.digit_indices[i]):
            box = x_high[r0:r1, c0:c1, 0]
            # Noise may add to a digit (maximum) but never hides it.
            assert np.all(box >= data.digit_pixels[digit] / np.float32(255))


def test_digit_boxes_do_not_overlap_and_fit_the_canvas(data):
    for split in _splits(data):
        for i in range(len(split)):
            boxes = split.boxes(i)
            assert boxes.shape == (5, 4)
            assert np.all(boxes[:, :2] >= 0)
            assert np.all(boxes[:, 2] <= 200) and np.all(boxes[:, 3] <= 200)
            assert np.all(boxes[:, 2:] - boxes[:, :2] == 28)
            for a in range(5):
                for b in range(a + 1, 5):
                    rows = boxes[a, 0] < boxes[b, 2] and boxes[b, 0] < boxes[a, 2]
                    cols = boxes[a, 1] < boxes[b, 3] and boxes[b, 1] < boxes[a, 3]
                    assert not (rows and cols), (split.name, i, a, b)


def test_image_shapes_dtype_and_range(data):
    x_low, x_high, _ = data.split("test").render(0)
    assert x_high.shape == (200, 200, 1) and x_low.shape == (50, 50, 1)
    assert x_high.dtype == np.float32 and x_low.dtype == np.float32
    for x in (x_low, x_high):
        assert x.min() >= 0 and x.max() <= 1
    assert x_high.max() == 1  # MNIST digits reach full intensity.


def test_low_view_is_the_downscaled_high_view(data):
    split = data.split("train")
    for i in range(3):
        x_low, x_high, _ = split.render(i)
        np.testing.assert_array_equal(x_low, downscale(x_high, (50, 50)))
        np.testing.assert_array_equal(x_low, split.render(i)[0])


def test_downscale_is_area_averaging():
    rng = np.random.default_rng(0)
    image = rng.random((12, 8, 1), dtype=np.float32)
    block_means = image.reshape(3, 4, 2, 4, 1).mean(axis=(1, 3))
    np.testing.assert_allclose(downscale(image, (3, 2)), block_means, rtol=1e-6)
    # A non-integer factor keeps the mean of the image and constants constant.
    odd = downscale(image[:, :, 0], (5, 3))
    assert odd.shape == (5, 3)
    np.testing.assert_allclose(odd.mean(), image.mean(), rtol=1e-5)
    np.testing.assert_allclose(downscale(np.full((9, 7), 0.5), (4, 3)), 0.5, rtol=1e-6)


def test_noise_on_and_off(data):
    config = MegapixelMNISTConfig(**{**SMALL, "noise": False})
    quiet = MegapixelMNIST.generate(config, progress=False)
    noisy_split, quiet_split = data.split("train"), quiet.split("train")
    assert noisy_split.noise_strokes.shape == (40, 10, 2, 4)
    assert quiet_split.noise_strokes.shape == (40, 0, 2, 4)
    # Noise has its own random stream: the digits stay where they were.
    np.testing.assert_array_equal(noisy_split.positions, quiet_split.positions)
    np.testing.assert_array_equal(noisy_split.digit_classes, quiet_split.digit_classes)
    outside = np.ones((200, 200), dtype=bool)
    for r0, c0, r1, c1 in quiet_split.boxes(0):
        outside[r0:r1, c0:c1] = False
    assert np.all(quiet_split.render(0)[1][outside, 0] == 0)
    assert np.any(noisy_split.render(0)[1][outside, 0] > 0)


def test_same_seed_same_data_set_other_seed_differs(data):
    again = MegapixelMNIST.generate(MegapixelMNISTConfig(**SMALL), progress=False)
    expected = _describe(data)
    for key, array in _describe(again).items():
        np.testing.assert_array_equal(array, expected[key], err_msg=key)
    for a, b in zip(data.split("test").render(1), again.split("test").render(1)):
        np.testing.assert_array_equal(a, b)

    other = MegapixelMNIST.generate(
        MegapixelMNISTConfig(**{**SMALL, "seed": 4}), progress=False
    )
    assert not np.array_equal(
        other.split("train").positions, data.split("train").positions
    )
    assert not np.array_equal(
        other.split("train").render(0)[1], data.split("train").render(0)[1]
    )


def test_train_and_test_use_disjoint_digits():
    config = MegapixelMNISTConfig(
        width=100, height=100, scale=0.5, noise=False, n_train=300, n_test=150
    )
    dataset = MegapixelMNIST.generate(config, progress=False)
    used = {
        split.name: set(
            dataset.digit_source_indices[split.digit_indices].ravel().tolist()
        )
        for split in _splits(dataset)
    }
    assert used["train"] and used["test"]
    assert not used["train"] & used["test"]


def test_save_load_round_trip(data, tmp_path, monkeypatch):
    data.save(tmp_path / "mm")
    files = sorted(p.name for p in (tmp_path / "mm").iterdir())
    assert files == ["config.json", "digits.npz", "test.npz", "train.npz"]
    meta = json.loads((tmp_path / "mm" / "config.json").read_text())
    assert meta["config"] == data.config.to_dict()
    for name in ("digits.npz", "train.npz", "test.npz"):
        with np.load(tmp_path / "mm" / name, allow_pickle=False) as stored:
            for key in stored.files:
                assert stored[key].dtype != object

    # Loading and rendering need no digit source.
    def no_source(source):
        raise AssertionError("the digit source was read")

    monkeypatch.setattr(digits, "load_digits", no_source)
    loaded = MegapixelMNIST.load(tmp_path / "mm")
    assert loaded.config == data.config
    expected = _describe(data)
    for key, array in _describe(loaded).items():
        np.testing.assert_array_equal(array, expected[key], err_msg=key)
    for name in mm.SPLITS:
        for a, b in zip(loaded.split(name).render(2), data.split(name).render(2)):
            np.testing.assert_array_equal(a, b)


def test_load_rejects_inconsistent_files(data, tmp_path):
    data.save(tmp_path)
    with np.load(tmp_path / "test.npz") as stored:
        arrays = dict(stored)
    arrays["positions"] = arrays["positions"][:, :4]
    np.savez(tmp_path / "test.npz", **arrays)
    with pytest.raises(ValueError, match="positions"):
        MegapixelMNIST.load(tmp_path)


def _write_digits_npz(path, per_class=6):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(10 * per_class, 28, 28), dtype=np.uint8)
    y = np.repeat(np.arange(10), per_class)
    np.savez(path, x=x, y=y)
    return x, y


def test_npz_source(tmp_path):
    x, y = _write_digits_npz(tmp_path / "digits.npz")
    config = MegapixelMNISTConfig(
        width=120,
        height=120,
        scale=0.5,
        n_noise=3,
        n_train=8,
        n_test=4,
        source=str(tmp_path / "digits.npz"),
        test_digit_fraction=0.5,
    )
    dataset = MegapixelMNIST.generate(config, progress=False)
    np.testing.assert_array_equal(dataset.digit_pixels, x[dataset.digit_source_indices])
    np.testing.assert_array_equal(dataset.digit_labels, y[dataset.digit_source_indices])
    x_low, x_high, label = dataset.split("test").render(0)
    assert x_low.shape == (60, 60, 1) and x_high.shape == (120, 120, 1)
    assert label == dataset.split("test").labels[0]


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(x=np.zeros((30, 28, 28), np.uint8)), "'y'"),
        (dict(x=np.zeros((30, 28, 28), np.float32), y=np.zeros(30, int)), "uint8"),
        (dict(x=np.zeros((30, 28, 28), np.uint8), y=np.full(30, 10)), "0..9"),
    ],
)
def test_bad_npz_source(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    config = MegapixelMNISTConfig(
        width=100, height=100, source=str(tmp_path / "bad.npz")
    )
    with pytest.raises(ValueError, match=message) as info:
        MegapixelMNIST.generate(config, progress=False)
    assert "source=" in str(info.value)


def test_too_few_digits_per_class(tmp_path):
    _write_digits_npz(tmp_path / "digits.npz", per_class=4)
    config = MegapixelMNISTConfig(
        width=100, height=100, n_train=2, n_test=2, source=str(tmp_path / "digits.npz")
    )
    with pytest.raises(ValueError, match="test_digit_fraction"):
        MegapixelMNIST.generate(config, progress=False)


def test_sequence_batches(data):
    split = data.split("test")
    sequence = MegapixelMNISTSequence(split, batch_size=8, workers=1, max_queue_size=2)
    assert len(sequence) == 3
    (x_low, x_high), y = sequence[0]
    assert x_low.shape == (8, 50, 50, 1) and x_low.dtype == np.float32
    assert x_high.shape == (8, 200, 200, 1) and x_high.dtype == np.float32
    assert y.shape == (8,) and y.dtype == np.int32
    np.testing.assert_array_equal(y, split.labels[:8])
    np.testing.assert_array_equal(x_high[3], split.render(3)[1])
    (x_low, x_high), y = sequence[2]
    assert x_low.shape[0] == x_high.shape[0] == y.shape[0] == 4
    with pytest.raises(IndexError):
        sequence[3]


def test_a_subset_renders_the_same_images(data):
    split = data.split("test")
    block = split.subset(slice(4, 8))
    assert len(block) == 4 and block.name == "test"
    np.testing.assert_array_equal(block.labels, split.labels[4:8])
    np.testing.assert_array_equal(block.render(1)[1], split.render(5)[1])
    np.testing.assert_array_equal(block.boxes(3), split.boxes(7))
    with pytest.raises(TypeError, match="`rows` must be a slice"):
        split.subset([1, 2])


def test_sequence_low_view_only(data):
    sequence = MegapixelMNISTSequence(data.split("test"), batch_size=5, views=("low",))
    x, y = sequence[1]
    assert isinstance(x, np.ndarray) and x.shape == (5, 50, 50, 1)
    np.testing.assert_array_equal(x[0], data.split("test").render(5)[0])


def test_batches_are_drawn_in_place_identically(data):
    """A batch's high views are drawn in its array, each view alone too."""
    split = data.split("train")
    indices = [4, 0, 7]
    (x_low, x_high), y = split.render_batch(indices)
    [high_only], _ = split.render_batch(indices, ("high",))
    [low_only], _ = split.render_batch(indices, ("low",))
    for b, i in enumerate(indices):
        low, high, label = split.render(i)
        np.testing.assert_array_equal(x_high[b], high)
        np.testing.assert_array_equal(high_only[b], high)
        np.testing.assert_array_equal(x_low[b], low)
        np.testing.assert_array_equal(low_only[b], low)
        assert y[b] == label


@pytest.mark.parametrize("cache", [False, True])
def test_batch_arrays_are_aligned_for_the_backends(data, backend, cache):
    """64-byte aligned views, which JAX on a CPU uses without a copy."""
    sequence = MegapixelMNISTSequence(data.split("test"), batch_size=3, cache=cache)
    for _ in range(2):  # with a cache, the second read comes from it
        (x_low, x_high), _ = sequence[1]
        for x in (x_low, x_high):
            assert x.ctypes.data % mm.arrays.ALIGNMENT == 0 and x.flags.c_contiguous
    if backend == "jax":
        import jax

        if jax.default_backend() == "cpu":
            on_device = jax.device_put(x_high)
            assert on_device.unsafe_buffer_pointer() == x_high.ctypes.data


def test_batches_reuse_memory_and_render_identically(data):
    split = data.split("train")
    pool = mm.arrays.BufferPool()
    addresses = set()
    for start in (0, 5, 10, 15):
        indices = list(range(start, start + 5))
        (x_low, x_high), _ = split.render_batch(indices, pool=pool)
        addresses.add(x_high.ctypes.data)
        for b, i in enumerate(indices):
            low, high, _ = split.render(i)
            np.testing.assert_array_equal(x_high[b], high)
            np.testing.assert_array_equal(x_low[b], low)
        del x_low, x_high
    assert len(addresses) == 1 and len(pool) == 2


def test_a_buffer_is_reused_only_once_nothing_holds_it(backend):
    pool = mm.arrays.BufferPool()
    x = pool.empty((4, 8, 8, 1))
    x[:] = 1
    address = x.ctypes.data
    row = x[2]  # a view of a view holds the buffer too
    del x
    assert pool.zeros((4, 8, 8, 1)).ctypes.data != address
    del row
    again = pool.zeros((2, 8, 8, 1))  # a smaller request reuses it, zeroed
    assert again.ctypes.data == address and not again.any()
    again[:] = 1
    # A tensor sharing the array's memory holds the buffer too.
    if backend == "jax":
        import jax

        shared = jax.device_put(again)  # in place on a CPU
    elif backend == "torch":
        import torch

        shared = torch.as_tensor(again)
    else:
        return  # TensorFlow copies
    del again
    other = pool.zeros((2, 8, 8, 1))
    assert other.ctypes.data != address
    other[:] = 5
    assert float(shared.sum()) == 2 * 8 * 8


def test_the_pool_keeps_at_most_max_buffers():
    pool = mm.arrays.BufferPool(max_buffers=2)
    held = [pool.empty((10,)) for _ in range(3)]  # the third is not kept
    assert len(pool) == 2 and len({x.ctypes.data for x in held}) == 3
    del held
    large = pool.empty((1000,))  # replaces an idle buffer
    assert len(pool) == 2 and large.size == 1000
    pool.clear()
    assert len(pool) == 0
    assert len(mm.arrays.BufferPool(max_buffers=0).empty((3,))) == 3


def test_a_small_request_leaves_a_large_buffer_alone():
    pool = mm.arrays.BufferPool()
    large = pool.empty((1000,))
    address = large.ctypes.data
    del large
    assert pool.empty((100,)).ctypes.data != address
    assert pool.empty((900,)).ctypes.data == address


def test_threads_get_distinct_buffers():
    import threading

    pool = mm.arrays.BufferPool()
    arrays = []

    def take():
        for _ in range(20):
            arrays.append(pool.zeros((64,)))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({x.ctypes.data for x in arrays}) == 80


@pytest.mark.parametrize("shape, dtype", [((3, 5, 7), "int32"), ((0, 4), "float32")])
def test_pool_arrays(shape, dtype):
    x = mm.arrays.BufferPool().zeros(shape, dtype)
    assert x.shape == shape and x.dtype == dtype and not x.any()
    assert x.flags.c_contiguous and x.flags.writeable
    # An empty array has no data whose address would matter.
    assert x.ctypes.data % mm.arrays.ALIGNMENT == 0 or x.size == 0


def _epoch(sequence):
    batches = [sequence[i] for i in range(len(sequence))]
    return np.concatenate([x for x, _ in batches]), np.concatenate(
        [y for _, y in batches]
    )


def test_sequence_shuffle_is_deterministic(data):
    split = data.split("test")
    make = lambda seed: MegapixelMNISTSequence(  # noqa: E731
        split, batch_size=6, shuffle=True, seed=seed, views=("low",)
    )
    first, twin, other = make(0), make(0), make(1)
    x0, y0 = _epoch(first)
    np.testing.assert_array_equal(x0, _epoch(twin)[0])
    assert not np.array_equal(x0, _epoch(other)[0])
    # Each epoch visits every image once.
    assert sorted(y0.tolist()) == sorted(split.labels.tolist())
    first.on_epoch_end()
    twin.on_epoch_end()
    x1, y1 = _epoch(first)
    assert not np.array_equal(x0, x1)
    np.testing.assert_array_equal(x1, _epoch(twin)[0])
    assert sorted(y1.tolist()) == sorted(split.labels.tolist())


def test_sequence_trains_a_keras_model(data):
    inputs = keras.Input((50, 50, 1))
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(inputs))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    sequence = MegapixelMNISTSequence(data.split("test"), batch_size=10, views=("low",))
    history = model.fit(sequence, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize(
    "overrides, error, name",
    [
        (dict(width=27), ValueError, "width"),
        (dict(height=10), ValueError, "height"),
        (dict(width=200.0), TypeError, "width"),
        (dict(scale=0), ValueError, "scale"),
        (dict(scale=1.5), ValueError, "scale"),
        (dict(scale="0.5"), TypeError, "scale"),
        (dict(scale=0.001, width=100, height=100), ValueError, "scale"),
        (dict(noise="yes"), TypeError, "noise"),
        (dict(n_noise=-1), ValueError, "n_noise"),
        (dict(n_train=-1), ValueError, "n_train"),
        (dict(n_test=-5), ValueError, "n_test"),
        (dict(n_train=True), TypeError, "n_train"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(source="mnist"), ValueError, "source"),
        (dict(source=3), TypeError, "source"),
        (dict(test_digit_fraction=1.0), ValueError, "test_digit_fraction"),
    ],
)
def test_bad_config_raises(overrides, error, name):
    with pytest.raises(error, match=f"MegapixelMNISTConfig: `{name}` must be") as info:
        MegapixelMNISTConfig(**overrides)
    assert "got" in str(info.value)


def test_config_accepts_numpy_scalars():
    config = MegapixelMNISTConfig(
        width=np.int64(100), height=100, scale=np.float32(0.5), noise=np.bool_(False)
    )
    assert type(config.width) is int and type(config.scale) is float
    assert config.noise is False and config.low_shape == (50, 50, 1)


def test_canvas_too_small_for_the_digits():
    config = MegapixelMNISTConfig(width=60, height=60, n_train=1, n_test=0)
    with pytest.raises(ValueError, match="width=60 and height=60"):
        MegapixelMNIST.generate(config, progress=False)


def test_bad_split_views_and_batch_size(data):
    with pytest.raises(ValueError, match="split"):
        data.split("validation")
    with pytest.raises(ValueError, match="batch_size"):
        MegapixelMNISTSequence(data.split("train"), batch_size=0)
    with pytest.raises(ValueError, match="views"):
        MegapixelMNISTSequence(data.split("train"), views=("medium",))
    with pytest.raises(TypeError, match="`cache` must be a bool"):
        MegapixelMNISTSequence(data.split("train"), cache="yes")
    with pytest.raises(TypeError, match="`shuffle` must be a bool"):
        MegapixelMNISTSequence(data.split("train"), shuffle=1)
    with pytest.raises(TypeError, match="`split` must be a MegapixelMNISTSplit"):
        MegapixelMNISTSequence(data)
    with pytest.raises(ValueError, match="shape"):
        downscale(np.zeros((10, 10), np.float32), (20, 5))
    with pytest.raises(IndexError):
        data.split("train").render(40)
