"""``attention_sampling`` in real models: fit, evaluate, predict, save, load."""

import keras
import numpy as np
import pytest
from keras import layers, ops

from ats.core import SamplePatches, attention_sampling
from ats.utils.layers import L2Normalize, SampleSoftmax
from ats.utils.regularizers import MultinomialEntropy

LOW, HIGH, PATCH, N_PATCHES = (16, 16), (64, 64), (8, 8), 4


def attention_network():
    return keras.Sequential(
        [
            layers.Conv2D(4, 3, padding="same", activation="tanh"),
            layers.Conv2D(1, 3, padding="same"),
            SampleSoftmax(squeeze_channels=True, smooth=1e-4),
        ]
    )


def feature_network():
    return keras.Sequential(
        [
            keras.Input((*PATCH, 1)),
            layers.Conv2D(8, 3, activation="relu"),
            layers.GlobalMaxPooling2D(),
            L2Normalize(),
        ]
    )


def pointwise_attention_network():
    """Per-position attention (1x1): PyTorch's CPU float16 convolution
    cannot differentiate a 3x3 Conv2D(4) -> Conv2D(1) stack at all (a
    limitation of torch, shown without ats), so mixed precision uses this."""
    return keras.Sequential(
        [
            layers.Dense(4, activation="tanh"),
            layers.Dense(1),
            SampleSoftmax(squeeze_channels=True, smooth=1e-4),
        ]
    )


def build_model(
    replace=False, seed=1, deterministic=False, attention_net=attention_network
):
    x_low, x_high = keras.Input((*LOW, 1)), keras.Input((*HIGH, 1))
    features, attention, patches = attention_sampling(
        attention_net(),
        feature_network(),
        n_patches=N_PATCHES,
        replace=replace,
        attention_regularizer=MultinomialEntropy(1e-3),
        seed=seed,
    )([x_low, x_high])
    if deterministic:
        for layer in keras.Model([x_low, x_high], features).layers:
            if isinstance(layer, SamplePatches):
                layer.deterministic = True
    y = layers.Dense(2, activation="softmax")(features)
    return keras.Model([x_low, x_high], [y, attention, patches])


def toy_data(n, seed=0):
    """A bright square on the left (class 0) or right half (class 1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x_high = rng.random((n, *HIGH, 1)).astype("float32") * 0.1
    for i, label in enumerate(y):
        row = rng.integers(0, HIGH[0] - 8)
        col = rng.integers(0, HIGH[1] // 2 - 8) + label * HIGH[1] // 2
        x_high[i, row : row + 8, col : col + 8] = 1.0
    x_low = x_high.reshape(n, LOW[0], 4, LOW[1], 4, 1).mean(axis=(2, 4))
    return [x_low, x_high], y.astype("int32")


def classifier(model):
    return keras.Model(model.inputs, model.outputs[0])


@pytest.mark.parametrize("replace", [False, True])
def test_fit_evaluate_predict_with_a_partial_last_batch(replace):
    x, y = toy_data(10)
    model = classifier(build_model(replace))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    loss, _ = model.evaluate(x, y, batch_size=4, verbose=0)
    assert np.isfinite(loss)
    predictions = model.predict(x, batch_size=4, verbose=0)
    assert predictions.shape == (10, 2) and np.isfinite(predictions).all()


def test_outputs_and_patch_size_inference():
    x, _ = toy_data(3)
    y, attention, patches = build_model()(x)
    assert tuple(y.shape) == (3, 2)
    assert tuple(attention.shape) == (3, *LOW)
    assert tuple(patches.shape) == (3, N_PATCHES, *PATCH, 1)
    np.testing.assert_allclose(
        ops.convert_to_numpy(ops.sum(attention, axis=(1, 2))), 1, rtol=1e-5
    )


def test_training_reduces_the_loss():
    x, y = toy_data(64)
    model = classifier(build_model())
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=16, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_regularizer_adds_its_loss():
    x, _ = toy_data(4)
    model = build_model()
    model(x)
    assert len(model.losses) == 1
    assert float(ops.convert_to_numpy(model.losses[0])) < 0


def test_compiled_execution(backend):
    x, y = toy_data(8)
    model = classifier(build_model())
    model.compile(
        "adam", "sparse_categorical_crossentropy", jit_compile=backend != "torch"
    )
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_sampling_changes_between_calls_under_compiled_predict():
    x, _ = toy_data(4)
    model = build_model()
    first = model.predict(x, verbose=0)[2]
    second = model.predict(x, verbose=0)[2]
    assert not np.array_equal(first, second)


def test_same_seed_same_samples():
    x, _ = toy_data(4)
    first, second = build_model(seed=5), build_model(seed=5)
    second.set_weights(first.get_weights())
    np.testing.assert_array_equal(
        ops.convert_to_numpy(first(x)[2]), ops.convert_to_numpy(second(x)[2])
    )


def test_mixed_precision_is_finite():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        x, y = toy_data(8)
        model = build_model(attention_net=pointwise_attention_network)
        train = classifier(model)
        train.compile("adam", "sparse_categorical_crossentropy")
        history = train.fit(x, y, batch_size=4, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        for output in model.predict(x, verbose=0):
            assert np.isfinite(output.astype("float32")).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_save_and_load_round_trip(tmp_path):
    x, _ = toy_data(4)
    model = build_model(deterministic=True)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for original, restored in zip(model(x), loaded(x)):
        np.testing.assert_allclose(
            ops.convert_to_numpy(restored), ops.convert_to_numpy(original), rtol=1e-6
        )


class SubclassedATS(keras.Model):
    def __init__(self):
        super().__init__()
        self.ats = attention_sampling(
            attention_network(), feature_network(), n_patches=N_PATCHES, seed=2
        )
        self.classify = layers.Dense(2, activation="softmax")

    def call(self, inputs):
        features, _, _ = self.ats(inputs)
        return self.classify(features)


def test_subclassed_model_trains_both_networks():
    x, y = toy_data(8)
    model = SubclassedATS()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    # 2 + 2 (attention convs), 2 (feature conv), 2 (dense)
    assert len(model.trainable_weights) == 8
    before = [w.copy() for w in model.ats.attention.get_weights()]
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    after = model.ats.attention.get_weights()
    assert any(not np.allclose(b, a) for b, a in zip(before, after))


def test_patch_size_cannot_be_inferred_from_a_function():
    with pytest.raises(ValueError, match="patch_size"):
        attention_sampling(attention_network(), lambda patches: patches)


def test_attention_keeping_the_channel_axis_is_rejected():
    keep_channels = keras.Sequential(
        [layers.Conv2D(1, 3, padding="same"), SampleSoftmax()]
    )
    ats = attention_sampling(keep_channels, feature_network())
    with pytest.raises(ValueError, match="channel axis"):
        ats([keras.Input((*LOW, 1)), keras.Input((*HIGH, 1))])


def test_called_on_a_single_tensor_is_rejected():
    ats = attention_sampling(attention_network(), feature_network())
    with pytest.raises(ValueError, match=r"\[x_low, x_high\]"):
        ats(keras.Input((*LOW, 1)))


def test_non_callable_networks_are_rejected():
    with pytest.raises(TypeError, match="attention"):
        attention_sampling("conv", feature_network())
