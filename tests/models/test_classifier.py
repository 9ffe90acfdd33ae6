"""The attention-sampling classifier of images of any size, and ``inspect``."""

import keras
import numpy as np
import pytest

from ats.core import expected
from ats.data import ArraySource
from ats.lazy import BucketedSequence
from ats.models import build_classifier
from ats.models.classifier import attention_network, inspect
from ats.training import deterministic_sampling

PATCH = (32, 32)
# Full-resolution sides; the low views are 4x smaller: 32x24, 24x40 and the
# last two (25x34, 26x33) in one bucket, 27x35.
SHAPES = ((128, 96), (96, 160), (100, 136), (104, 132))


def numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def sources():
    rng = np.random.default_rng(0)
    images = [rng.random((*shape, 1), "float32") for shape in SHAPES]
    return [ArraySource(x, low=x[::4, ::4]) for x in images]


def small_classifier(**kwargs):
    kwargs = {
        "channels": 1,
        "n_classes": 3,
        "patch_size": PATCH,
        "n_patches": 2,
        "attention_filters": 2,
        "feature_filters": 4,
        "seed": 1,
        **kwargs,
    }
    return build_classifier(**kwargs)


def first_batch(sources, batch_size=2):
    batches = BucketedSequence(sources, batch_size=batch_size)
    # The batch holds references only: `sources` keeps them alive.
    return batches[0][0], batches


@pytest.mark.parametrize("receptive_field, shrink", [(0, 0), (3, 2), (9, 8)])
def test_attention_network_receptive_fields(receptive_field, shrink):
    net = attention_network(3, receptive_field)
    attention = numpy(net(np.ones((2, 20, 30, 1), "float32")))
    assert attention.shape == (2, 20 - shrink, 30 - shrink)
    np.testing.assert_allclose(attention.sum(axis=(1, 2)), 1, rtol=1e-5)
    convolutions = [
        layer for layer in net.layers if isinstance(layer, keras.layers.Conv2D)
    ]
    padding = "same" if receptive_field == 0 else "valid"
    assert {c.padding for c in convolutions} == {padding}
    assert {c.kernel_size for c in convolutions} == {(3, 3)}
    assert len(convolutions) == (3 if receptive_field == 0 else shrink // 2)
    assert net.name == "attention"


@pytest.mark.parametrize("receptive_field", [1, 2, 4, -1])
def test_attention_network_refuses_other_receptive_fields(receptive_field):
    with pytest.raises(ValueError, match="`receptive_field` must be"):
        attention_network(3, receptive_field)


def test_model_inputs_outputs_and_parts():
    model = small_classifier()
    shapes = [tuple(x.shape) for x in model.inputs]
    assert shapes == [(None, None, None, 1), (None, 5), (None, None, None)]
    assert [x.dtype for x in model.inputs] == ["float32", "int32", "float32"]
    assert model.output_shape == (None, 3)
    for name in ("attention", "feature", "classifier"):
        assert model.get_layer(name) is not None


def test_predicts_and_trains_on_mixed_buckets(sources):
    model = small_classifier()
    model.compile("adam", "sparse_categorical_crossentropy")
    batches = BucketedSequence(sources, y=[0, 1, 2, 1], batch_size=2, shuffle=True)
    assert len(batches.bucket_shapes) >= 2  # mixed step shapes
    before = [numpy(w).copy() for w in model.trainable_weights]
    history = model.fit(batches, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [numpy(w) for w in model.trainable_weights]
    assert any(not np.allclose(a, b) for a, b in zip(after, before))
    plain = BucketedSequence(sources, batch_size=2)
    probabilities = model.predict(plain, verbose=0)
    assert probabilities.shape == (2 * len(plain), 3)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_valid_attention_with_a_receptive_field_predicts(sources):
    model = small_classifier(receptive_field=9, replace=True)
    probabilities = model.predict(BucketedSequence(sources, batch_size=2), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_frozen_feature_network(sources):
    model = small_classifier(freeze_feature=True)
    assert not model.get_layer("feature").trainable_weights
    assert model.get_layer("attention").trainable_weights
    trainable = {id(w) for w in model.trainable_weights}
    assert not trainable & {id(w) for w in model.get_layer("feature").weights}


def test_saves_and_loads(sources, tmp_path):
    model = small_classifier()
    model.compile("adam", "sparse_categorical_crossentropy")
    batches = BucketedSequence(sources, batch_size=2)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [tuple(x.shape) for x in loaded.inputs] == [
        tuple(x.shape) for x in model.inputs
    ]
    with deterministic_sampling(model), deterministic_sampling(loaded):
        np.testing.assert_allclose(
            loaded.predict(batches, verbose=0),
            model.predict(batches, verbose=0),
            rtol=1e-5,
            atol=1e-6,
        )


def crop(image, corner, size):
    """The patch of ``image`` at ``corner``, zeros outside the image."""
    out = np.zeros((*size, image.shape[-1]), image.dtype)
    y0, x0 = corner
    ys = slice(max(y0, 0), min(y0 + size[0], image.shape[0]))
    xs = slice(max(x0, 0), min(x0 + size[1], image.shape[1]))
    out[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0] = image[ys, xs]
    return out


@pytest.mark.parametrize("deterministic", [False, True])
def test_inspect_is_the_models_step_from_exactly_its_patches(sources, deterministic):
    model = small_classifier()
    (x_low, x_high_ref, support), batches = first_batch(sources[2:])
    assert batches.batch_items(0).tolist() == [0, 1]  # two sizes, one bucket
    seen = inspect(model, x_low, x_high_ref, support, deterministic, seed=3)
    batch, n = x_low.shape[0], 2
    assert seen["attention"].shape == support.shape
    assert seen["corners"].shape == (batch, n, 2)
    assert seen["patches"].shape == (batch, n, *PATCH, 1)
    assert seen["sampled_attention"].shape == (batch, n)
    assert seen["probabilities"].shape == (batch, 3)
    # The attention is restricted to each image's own (unpadded) area.
    assert (support == 0).any()  # the batch is padded
    np.testing.assert_allclose(seen["attention"].sum(axis=(1, 2)), 1, rtol=1e-5)
    assert (seen["attention"][support == 0] == 0).all()
    # The patches are those of the sources at the corners.
    by_id = {source.id: source for source in sources}
    for b, reference in enumerate(x_high_ref):
        image = _image(by_id[int(reference[0])])
        for i in range(n):
            np.testing.assert_array_equal(
                seen["patches"][b, i], crop(image, seen["corners"][b, i], PATCH)
            )
    # The probabilities are the model's head on exactly these patches.
    feature = model.get_layer("feature")
    features = numpy(feature(seen["patches"].reshape(batch * n, *PATCH, 1)))
    probabilities = numpy(
        model.get_layer("classifier")(
            expected(seen["sampled_attention"], features.reshape(batch, n, -1))
        )
    )
    np.testing.assert_allclose(seen["probabilities"], probabilities, rtol=1e-5)
    if deterministic:  # and the model's own prediction of its top patches
        with deterministic_sampling(model):
            predicted = model.predict([x_low, x_high_ref, support], verbose=0)
        np.testing.assert_allclose(seen["probabilities"], predicted, rtol=1e-4)


def _image(source):
    """The full-resolution array of an ``ArraySource``."""
    corners = np.zeros((1, 2), "int32")
    return np.asarray(source.read(corners, source.spatial_shape))[0]


def test_inspect_without_support_samples_the_whole_low_view(sources):
    model = small_classifier()
    (x_low, x_high_ref, support), _ = first_batch(sources[:1], batch_size=1)
    seen = inspect(model, x_low, x_high_ref, seed=0)
    whole = inspect(model, x_low, x_high_ref, np.ones_like(support), seed=0)
    np.testing.assert_allclose(seen["attention"], whole["attention"])


def test_inspect_refuses_another_model():
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="inspect: `model` must be a model built"):
        inspect(other, np.zeros((1, 16, 16, 1)), np.zeros((1, 5)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_classes": 1}, "`n_classes` must be an int >= 2"),
        ({"feature": "vgg"}, "`feature` must be one of"),
        ({"receptive_field": 4}, "`receptive_field` must be 0 or an odd"),
        ({"patch_size": (16, 16)}, "at least 27x27"),
        ({"regularizer_strength": -1}, "`regularizer_strength` must be"),
    ],
)
def test_build_errors_are_clear(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_classifier(**kwargs)


def test_pretrained_feature_network_trains_frozen_and_reloads(tmp_path):
    rng = np.random.default_rng(1)
    images = [rng.random((*shape, 3), "float32") for shape in SHAPES[:2]]
    rgb = [ArraySource(x, low=x[::4, ::4]) for x in images]
    model = small_classifier(
        channels=3,
        feature="mobilenetv3small",
        feature_filters=None,
        freeze_feature=True,
    )
    assert model.get_layer("feature").output_shape == (None, 576)
    assert not model.get_layer("feature").trainable_weights
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(
        BucketedSequence(rgb, y=[0, 2], batch_size=2), epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert not loaded.get_layer("feature").trainable_weights
    batches = BucketedSequence(rgb, batch_size=2)
    with deterministic_sampling(model), deterministic_sampling(loaded):
        np.testing.assert_allclose(
            loaded.predict(batches, verbose=0),
            model.predict(batches, verbose=0),
            rtol=1e-5,
            atol=1e-6,
        )


def test_float16_feature_network_trains_with_loss_scaling(sources, tmp_path):
    # `ats fit --mixed-precision float16`: the model is float32 around a
    # float16 feature network, which Keras does not loss-scale by itself.
    from ats.experiments import your_data
    from ats.training.checkpoint import load_checkpoint, save_checkpoint

    config = your_data.TrainConfig(
        mixed_precision="float16", patch_size=PATCH, n_patches=2, attention_filters=2
    )
    model = your_data._build(config, channels=1, n_classes=3)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    feature_layers = model.get_layer("feature").layers
    assert "float16" in {layer.compute_dtype for layer in feature_layers}
    batches = BucketedSequence(sources, y=[0, 1, 2, 1], batch_size=2)
    before = [numpy(w).copy() for w in model.trainable_weights]
    history = model.fit(batches, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [numpy(w) for w in model.trainable_weights]
    assert all(np.isfinite(w).all() for w in after)
    assert any(not np.allclose(a, b) for a, b in zip(after, before))

    save_checkpoint(tmp_path / "checkpoint.npz", model, {"epoch": 1})
    resumed = your_data._build(config, channels=1, n_classes=3)
    load_checkpoint(tmp_path / "checkpoint.npz", resumed)
    for saved, loaded in zip(model.optimizer.variables, resumed.optimizer.variables):
        np.testing.assert_array_equal(numpy(saved), numpy(loaded))
    # bfloat16 has float32's exponent range: nothing to scale.
    bfloat16 = your_data.TrainConfig(mixed_precision="bfloat16", patch_size=PATCH)
    optimizer = your_data._build(bfloat16, channels=1, n_classes=3).optimizer
    assert not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
