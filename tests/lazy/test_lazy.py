"""The lazy path: attention sampling over host sources, never x_high.

Checks that it is the in-graph path with the patch extraction moved to the
host (same positions, patches, features and gradients), that the positions
a training step reads come from the weights that step differentiates, that
fit/evaluate/predict/save work, and that bad input fails clearly.
"""

import keras
import numpy as np
import pytest
from keras import layers, ops

from ats.core import SamplePatches, attention_sampling, sample
from ats.data import ArraySource, FromTensors, SourceError
from ats.lazy import SourcePatches, SourceSequence, lazy_attention_sampling
from ats.utils.layers import L2Normalize, SampleSoftmax

LOW, HIGH, PATCH, N_PATCHES, SEED = (16, 16), (64, 64), (8, 8), 4, 7


class RecordingSource(ArraySource):
    """An ArraySource that logs the corners of every read."""

    def __init__(self, high, low, name=None):
        super().__init__(high, low, name)
        self.reads = []

    def _checked_corners(self, corners, size):
        # Every read (``read``, ``read_many``) checks its corners here first.
        self.reads.append(np.array(corners))
        return super()._checked_corners(corners, size)


def attention_network():
    return keras.Sequential(
        [
            layers.Conv2D(4, 3, padding="same", activation="tanh"),
            layers.Conv2D(1, 3, padding="same"),
            SampleSoftmax(squeeze_channels=True, smooth=1e-3),
        ],
        name="attention",
    )


def feature_network(channels=1):
    return keras.Sequential(
        [
            keras.Input((*PATCH, channels)),
            layers.Rescaling(1.0),  # accepts uint8 patches
            layers.Conv2D(8, 3, activation="relu"),
            layers.GlobalMaxPooling2D(),
            L2Normalize(),
        ],
        name="feature",
    )


def build(lazy, replace=False, dtype="float32", channels=1):
    """The same model on [x_low, x_high] (in-graph) or [x_low, x_high_ref]."""
    x_low = keras.Input((*LOW, channels), dtype=dtype)
    if lazy:
        second = keras.Input((3,), dtype="int32")
        builder = lazy_attention_sampling
    else:
        second = keras.Input((*HIGH, channels), dtype=dtype)
        builder = attention_sampling
    attention = attention_network()
    scaled = keras.Sequential([layers.Rescaling(1.0), attention])
    features, attention_map, patches = builder(
        scaled,
        feature_network(channels),
        patch_size=PATCH,
        n_patches=N_PATCHES,
        replace=replace,
        seed=SEED,
    )([x_low, second])
    y = layers.Dense(2, activation="softmax", name="classifier")(features)
    model = keras.Model([x_low, second], [y, features, attention_map, patches])
    classifier = keras.Model([x_low, second], y)
    return model, classifier, attention


def toy_images(n, seed=0, dtype="float32"):
    """Bright squares on noise, the class being the half they lie in."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n).astype("int32")
    x_high = rng.random((n, *HIGH, 1)) * 0.2
    for i, label in enumerate(y):
        row = rng.integers(0, HIGH[0] - 8)
        col = rng.integers(0, HIGH[1] // 2 - 8) + label * HIGH[1] // 2
        x_high[i, row : row + 8, col : col + 8] = 1.0
    x_low = x_high.reshape(n, LOW[0], 4, LOW[1], 4, 1).mean(axis=(2, 4))
    if dtype == "uint8":
        return (
            np.rint(x_low * 255).astype("uint8"),
            np.rint(x_high * 255).astype("uint8"),
            y,
        )
    return x_low.astype(dtype), x_high.astype(dtype), y


def sources_for(x_low, x_high, kind=RecordingSource):
    return [kind(x_high[i], x_low[i], name=f"image{i}") for i in range(len(x_low))]


def references(sources):
    return np.stack([source.reference() for source in sources])


def numpy(tensors):
    return [ops.convert_to_numpy(t) for t in tensors]


def in_graph_corners(model_outputs, x_low, x_high, seed_state, replace):
    """Corners the in-graph path reads: ``sample`` with the layer's seed
    state on the model's attention, mapped by ``FromTensors``."""
    attention = model_outputs[2]
    seed = keras.random.SeedGenerator(0)
    seed.state.assign(seed_state)
    positions, _ = sample(N_PATCHES, attention, replace=replace, seed=seed)
    _, corners = FromTensors(
        [ops.convert_to_tensor(x_low), ops.convert_to_tensor(x_high)]
    ).patches(positions, 0.0, LOW, np.asarray(LOW, "float32"), PATCH, 0, 1)
    return ops.convert_to_numpy(corners)


def sampling_layer(model, kind):
    return next(layer for layer in model.layers if isinstance(layer, kind))


@pytest.mark.parametrize("replace,dtype", [(False, "float32"), (True, "uint8")])
def test_same_positions_patches_features_and_gradients(replace, dtype):
    x_low, x_high, y = toy_images(4, dtype=dtype)
    in_graph, in_graph_classifier, _ = build(False, replace, dtype)
    lazy, lazy_classifier, _ = build(True, replace, dtype)
    lazy.set_weights(in_graph.get_weights())
    sources = sources_for(x_low, x_high)
    seed_state = ops.convert_to_numpy(
        sampling_layer(in_graph, SamplePatches).seed_generator.state
    )

    expected = numpy(in_graph([x_low, x_high]))
    got = numpy(lazy([x_low, references(sources)]))
    corners = in_graph_corners(expected, x_low, x_high, seed_state, replace)
    for source, source_corners in zip(sources, corners):
        np.testing.assert_array_equal(source.reads[-1], source_corners)
    for name, a, b in zip(["y", "features", "attention", "patches"], expected, got):
        np.testing.assert_array_equal(a, b, err_msg=name)

    # Gradients: one SGD step of learning rate 1 moves every weight by
    # minus its gradient; the seed states advanced alike.
    initial = lazy_classifier.get_weights()
    for model in (in_graph_classifier, lazy_classifier):
        model.compile(keras.optimizers.SGD(1.0), "sparse_categorical_crossentropy")
    in_graph_classifier.train_on_batch([x_low, x_high], y)
    lazy_classifier.train_on_batch([x_low, references(sources)], y)
    for a, b, w in zip(
        in_graph_classifier.get_weights(), lazy_classifier.get_weights(), initial
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        if w.ndim > 1:  # every kernel, of both networks, got a gradient
            assert not np.allclose(a, w)


def test_same_patches_as_in_graph_channels_first():
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        rng = np.random.default_rng(3)
        x_high = rng.random((2, 2, *HIGH)).astype("float32")
        x_low = x_high[:, :, ::4, ::4]
        attention = rng.random((2, *LOW)).astype("float32")
        attention /= attention.sum(axis=(1, 2), keepdims=True)
        sources = [
            ArraySource(np.moveaxis(x_high[i], 0, -1), np.moveaxis(x_low[i], 0, -1))
            for i in range(2)
        ]
        expected = SamplePatches(N_PATCHES, PATCH, seed=SEED)(
            [x_low, x_high, attention]
        )
        got = SourcePatches(N_PATCHES, PATCH, seed=SEED)(
            [x_low, references(sources), attention]
        )
        for a, b in zip(numpy(expected), numpy(got)):
            np.testing.assert_array_equal(a, b)
        assert tuple(got[0].shape) == (2, N_PATCHES, 2, *PATCH)
    finally:
        keras.config.set_image_data_format(previous)


class WeightsAtEachStep(keras.callbacks.Callback):
    """The attention weights and the sampling seed state before each step."""

    def __init__(self, attention, sampler):
        super().__init__()
        self.attention, self.sampler = attention, sampler
        self.weights, self.seed_states = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.model  # noqa: B018 -- on JAX, syncs the state into the variables
        self.weights.append([w.copy() for w in self.attention.get_weights()])
        self.seed_states.append(ops.convert_to_numpy(self.sampler.seed_generator.state))


def test_positions_come_from_the_weights_of_the_step_that_reads_them():
    x_low, x_high, y = toy_images(8, seed=1)
    lazy, classifier, attention = build(True)
    sources = sources_for(x_low, x_high)
    sequence = SourceSequence(sources, y, batch_size=2, patch_size=PATCH)
    # Large steps, so that the attention moves visibly between steps.
    classifier.compile(keras.optimizers.Adam(0.3), "sparse_categorical_crossentropy")
    recorder = WeightsAtEachStep(attention, sampling_layer(lazy, SourcePatches))
    classifier.fit(sequence, epochs=1, verbose=0, callbacks=[recorder], shuffle=False)
    assert len(recorder.weights) == len(sequence) == 4

    def corners_with(weights, step):
        attention.set_weights(weights)
        batch = slice(2 * step, 2 * step + 2)
        outputs = [None, None, attention(x_low[batch])]
        return in_graph_corners(
            outputs, x_low[batch], x_high[batch], recorder.seed_states[step], False
        )

    stale_differs = False
    for step in range(4):
        read = np.stack([s.reads[0] for s in sources[2 * step : 2 * step + 2]])
        np.testing.assert_array_equal(read, corners_with(recorder.weights[step], step))
        if step:
            stale = corners_with(recorder.weights[step - 1], step)
            stale_differs |= not np.array_equal(read, stale)
    # The check can tell: the previous step's weights would have read
    # other patches.
    assert stale_differs


def test_fit_evaluate_predict_on_tiff_sources(tmp_path):
    tifffile = pytest.importorskip(
        "tifffile", reason="TiffSource needs tifffile (the [gigapixel] extra)"
    )
    from ats.data import TiffSource

    x_low, x_high, y = toy_images(5, dtype="uint8")
    sources = []
    for i in range(5):
        path = tmp_path / f"image{i}.tif"
        with tifffile.TiffWriter(path) as writer:
            writer.write(x_high[i, ..., 0], tile=(16, 16), compression="zlib")
            writer.write(
                x_low[i, ..., 0], tile=(16, 16), compression="zlib", subfiletype=1
            )
        sources.append(TiffSource(path, low_level=1, scale=0.25))
    _, classifier, _ = build(True, dtype="uint8")
    classifier.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    # Batches of 3 and 2 (a batch of 1 trips PyTorch's CPU convolution
    # gradient, in-graph alike: "slow_conv2d: grad_weight must be
    # contiguous").
    train = SourceSequence(sources, y, batch_size=3, patch_size=PATCH, shuffle=True)
    history = classifier.fit(train, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    loss, _ = classifier.evaluate(SourceSequence(sources, y, batch_size=5), verbose=0)
    assert np.isfinite(loss)
    predictions = classifier.predict(SourceSequence(sources, batch_size=5), verbose=0)
    assert predictions.shape == (5, 2) and np.isfinite(predictions).all()


def test_a_failed_read_mid_epoch_names_the_file_and_the_position(tmp_path):
    tifffile = pytest.importorskip(
        "tifffile", reason="TiffSource needs tifffile (the [gigapixel] extra)"
    )
    from ats.data import TiffSource

    x_low, x_high, y = toy_images(4, dtype="uint8")
    paths = [tmp_path / f"good{i}.tif" for i in range(3)] + [tmp_path / "bad.tif"]
    for i, path in enumerate(paths):
        with tifffile.TiffWriter(path) as writer:
            writer.write(x_high[i, ..., 0], tile=(16, 16), compression="jpeg")
            writer.write(
                x_low[i, ..., 0], tile=(16, 16), compression="zlib", subfiletype=1
            )
    with tifffile.TiffFile(paths[3]) as tif:  # garble every full-res tile
        page = tif.pages[0]
        tiles = list(zip(page.dataoffsets, page.databytecounts))
    with open(paths[3], "r+b") as f:
        for offset, count in tiles:
            f.seek(offset + 4)
            f.write(b"\x00" * (count - 8))
    sources = [TiffSource(p, low_level=1) for p in paths]
    _, classifier, _ = build(True, dtype="uint8")
    classifier.compile("sgd", "sparse_categorical_crossentropy")
    # The first step reads good0 and good1, the second fails on bad.tif.
    with pytest.raises(
        Exception,
        match=r"bad\.tif: cannot read the patch "
        r"of size \(8, 8\) at corner \(",
    ):
        classifier.fit(
            SourceSequence(sources, y, batch_size=2), verbose=0, shuffle=False
        )


def test_save_and_load(tmp_path):
    x_low, x_high, _ = toy_images(3)
    lazy, classifier, _ = build(True)
    sampling_layer(lazy, SourcePatches).deterministic = True
    sources = sources_for(x_low, x_high)
    expected = classifier.predict([x_low, references(sources)], verbose=0)
    classifier.save(tmp_path / "lazy.keras")
    loaded = keras.models.load_model(tmp_path / "lazy.keras")
    assert sampling_layer(loaded, SourcePatches).deterministic
    np.testing.assert_allclose(
        loaded.predict([x_low, references(sources)], verbose=0), expected, rtol=1e-5
    )


def test_save_and_load_keeps_the_seed_state(tmp_path):
    """The reloaded lazy model draws what the original would draw next."""
    x_low, x_high, _ = toy_images(3)
    _, classifier, _ = build(True)
    sources = sources_for(x_low, x_high)  # alive while the models read them
    inputs = [x_low, references(sources)]
    first = classifier.predict(inputs, verbose=0)
    assert not np.allclose(first, classifier.predict(inputs, verbose=0))
    classifier.save(tmp_path / "lazy.keras")
    loaded = keras.models.load_model(tmp_path / "lazy.keras")
    for _ in range(2):
        np.testing.assert_allclose(
            loaded.predict(inputs, verbose=0),
            classifier.predict(inputs, verbose=0),
            rtol=1e-6,
        )


def test_batch_sizes_of_x_low_and_x_high_ref_are_checked():
    x_low, x_high, _ = toy_images(3)
    _, classifier, _ = build(True)
    sources = sources_for(x_low, x_high)
    refs = references(sources)
    match = r"SourcePatches: `x_high_ref` must have the batch size of `x_low` \(3\)"
    with pytest.raises(ValueError, match=match + ", got 2"):
        classifier.predict_on_batch([x_low, refs[:2]])
    layer = SourcePatches(N_PATCHES, PATCH)
    attention = np.full((3, *LOW), 1 / np.prod(LOW), "float32")
    with pytest.raises(ValueError, match=match + ", got 2"):
        layer([x_low, refs[:2], attention])


def test_closed_source_fails_clearly():
    x_low, x_high, _ = toy_images(2)
    _, classifier, _ = build(True)
    sources = sources_for(x_low, x_high)
    refs = references(sources)
    sources[1].close()
    with pytest.raises(Exception, match="batch item 1: no open PatchSource"):
        classifier.predict([x_low, refs], verbose=0)


def test_source_sequence_checks_up_front():
    x_low, x_high, y = toy_images(3)
    sources = sources_for(x_low, x_high, ArraySource)
    with pytest.raises(
        SourceError, match=r"image0: `patch_size` must be at most .*, got \(80, 8\)"
    ):
        SourceSequence(sources, y, patch_size=(80, 8))
    odd = ArraySource(x_high[0], x_low[0, :8], name="odd")
    with pytest.raises(SourceError, match=r"odd: its low view has shape"):
        SourceSequence(sources + [odd], np.append(y, 0))
    with pytest.raises(ValueError, match="`y` has 2 entries for 3 sources"):
        SourceSequence(sources, y[:2])
    with pytest.raises(ValueError, match="use_multiprocessing"):
        SourceSequence(sources, y, use_multiprocessing=True, workers=2)
    with pytest.raises(TypeError, match=r"sources\[0\] must be a PatchSource"):
        SourceSequence([x_high[0]])
    (low, refs), labels = SourceSequence(sources, y, batch_size=2)[1]
    assert low.shape == (1, *LOW, 1) and refs.shape == (1, 3)
    assert refs[0, 0] == sources[2].id and tuple(refs[0, 1:]) == HIGH
    np.testing.assert_array_equal(labels, y[2:])
