"""RestrictAttention: the attention restricted to a data point's support.

Exact values against a numpy reference of the documented rule, the finite
fallbacks (values and gradients), serialization, and the builder's optional
third input.
"""

import keras
import numpy as np
import pytest
from autodiff import gradients
from keras import layers, ops

from ats.core import RestrictAttention, attention_sampling
from ats.core.support import support_cells
from ats.utils.layers import SampleSoftmax


def reference_valid(support, attention_shape, receptive_field):
    """The documented rule in numpy: cell s is valid when the support pixel
    at floor(rf / 2 + (s + 0.5) * (L - rf) / S) is > 0.5."""
    low = support.shape[1:]
    grids = []
    for size_low, size_att in zip(low, attention_shape):
        s = np.arange(size_att)
        centre = (
            receptive_field / 2 + (s + 0.5) * (size_low - receptive_field) / size_att
        )
        grids.append(np.clip(np.floor(centre).astype(int), 0, size_low - 1))
    index = np.ix_(*grids)
    return np.stack([b[index] for b in support]) > 0.5


def reference_restrict(attention, support, receptive_field):
    valid = reference_valid(support, attention.shape[1:], receptive_field)
    out = attention.astype(np.float64).copy()
    for b in range(len(out)):
        if not valid[b].any():
            continue
        restricted = np.where(valid[b], np.maximum(out[b], 1e-30), 0.0)
        out[b] = restricted / restricted.sum()
    return out.astype(np.float32)


def random_attention(rng, shape):
    a = rng.random(shape).astype(np.float32) ** 4
    return a / a.sum(axis=tuple(range(1, len(shape))), keepdims=True)


@pytest.mark.parametrize(
    "low,attention_shape,receptive_field",
    [((12, 9), (12, 9), 0), ((12, 9), (6, 3), 0), ((15, 11), (11, 7), 5)],
)
def test_exact_values_against_numpy(rng, low, attention_shape, receptive_field):
    attention = random_attention(rng, (4, *attention_shape))
    support = (rng.random((4, *low)) > 0.4).astype(np.float32)
    support[3] = 0.0  # an empty support: the attention unchanged
    out = RestrictAttention(receptive_field)([attention, support])
    out = ops.convert_to_numpy(out)
    expected = reference_restrict(attention, support, receptive_field)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-12)
    assert out.dtype == np.float32
    valid = reference_valid(support, attention_shape, receptive_field)
    np.testing.assert_allclose(out[:3].sum(axis=(1, 2)), 1.0, rtol=1e-6)
    assert np.all(out[:3][~valid[:3]] == 0)
    np.testing.assert_array_equal(out[3], attention[3])


def test_support_cells_one_dimension_and_three():
    support = np.zeros((1, 8), np.float32)
    support[0, :4] = 1  # cell centres at 1, 3, 5, 7
    cells = ops.convert_to_numpy(support_cells(support, (4,)))
    np.testing.assert_array_equal(cells, [[1, 1, 0, 0]])
    support3 = np.zeros((1, 4, 4, 4), np.float32)
    support3[0, :2, 2:, :] = 1
    cells3 = ops.convert_to_numpy(support_cells(support3, (2, 2, 2)))
    np.testing.assert_array_equal(cells3[0, :, :, 0], [[0, 1], [0, 0]])


def test_fallbacks_are_finite_values_and_gradients():
    support = np.zeros((4, 6, 6), np.float32)
    support[:, :3, :3] = 1
    support[3] = 0  # empty support
    attention = np.zeros((4, 6, 6), np.float32)
    attention[0] = 1 / 36  # ordinary
    attention[1, 5, 5] = 1.0  # all its mass off the support: underflow
    attention[2] = 0.0  # zero attention
    attention[3] = 1 / 36  # no valid cell
    layer = RestrictAttention()
    out = ops.convert_to_numpy(layer([attention, support]))
    assert np.all(np.isfinite(out))
    uniform = np.zeros((6, 6), np.float32)
    uniform[:3, :3] = 1 / 9
    for b in range(3):
        np.testing.assert_allclose(out[b], uniform, rtol=1e-6)
    np.testing.assert_array_equal(out[3], attention[3])

    tiny = np.full((4, 6, 6), 1e-40, np.float32)  # denormals, sum underflows
    np.testing.assert_allclose(
        ops.convert_to_numpy(layer([tiny, support]))[0], uniform, rtol=1e-6
    )

    weights = np.random.default_rng(0).random((4, 6, 6)).astype(np.float32)
    for a in (attention, tiny):
        value, (grad,) = gradients(
            lambda x: ops.sum(layer([x, support]) * ops.convert_to_tensor(weights)),
            a,
        )
        assert np.isfinite(value)
        assert np.all(np.isfinite(grad))


def test_gradient_matches_the_normalisation(rng):
    """d/da of sum(w * restricted) where a is positive on valid cells."""
    attention = random_attention(rng, (2, 5, 5)) + 1e-3
    support = np.zeros((2, 5, 5), np.float32)
    support[:, 1:4, :] = 1
    w = rng.random((2, 5, 5)).astype(np.float32)
    layer = RestrictAttention()
    _, (grad,) = gradients(
        lambda x: ops.sum(layer([x, support]) * ops.convert_to_tensor(w)), attention
    )
    valid = support > 0.5
    for b in range(2):
        mass = attention[b][valid[b]].sum()
        out = attention[b] * valid[b] / mass
        expected = valid[b] * (w[b] - (w[b] * out).sum()) / mass
        np.testing.assert_allclose(grad[b], expected, rtol=1e-4, atol=1e-6)


def test_bad_inputs_are_named():
    layer = RestrictAttention()
    with pytest.raises(ValueError, match="support"):
        layer([np.ones((1, 4, 4), "float32"), np.ones((1, 4), "float32")])
    with pytest.raises(ValueError, match="must not exceed"):
        layer([np.ones((1, 8, 8), "float32"), np.ones((1, 4, 4), "float32")])
    with pytest.raises(ValueError, match="receptive_field"):
        RestrictAttention(-1)


def test_serialization_round_trip(tmp_path, rng):
    layer = RestrictAttention(receptive_field=3, name="restrict")
    clone = RestrictAttention.from_config(layer.get_config())
    assert clone.receptive_field == 3 and clone.name == "restrict"
    assert keras.saving.get_registered_name(RestrictAttention) == (
        "ats>RestrictAttention"
    )

    attention = keras.Input((8, 8))
    support = keras.Input((10, 10))
    model = keras.Model([attention, support], layer([attention, support]))
    assert tuple(model.output.shape) == (None, 8, 8)
    path = tmp_path / "restrict.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    a = random_attention(rng, (2, 8, 8))
    s = (rng.random((2, 10, 10)) > 0.5).astype(np.float32)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded.predict([a, s], verbose=0)),
        ops.convert_to_numpy(model.predict([a, s], verbose=0)),
        rtol=1e-6,
    )


def test_attention_sampling_with_a_support_samples_only_on_it():
    """In-graph: the returned attention is the restricted one and every
    patch is centred on the support (over many draws)."""
    low, high, patch = (8, 8), (32, 32), (4, 4)
    attention_net = keras.Sequential(
        [
            layers.Conv2D(1, 1, kernel_initializer="ones"),
            SampleSoftmax(squeeze_channels=True),
        ]
    )
    feature_net = keras.Sequential([keras.Input((*patch, 1)), layers.Flatten()])
    x_low = keras.Input((*low, 1))
    x_high = keras.Input((*high, 1))
    support_in = keras.Input(low)
    features, attention_map, patches = attention_sampling(
        attention_net, feature_net, patch, n_patches=16, replace=True, seed=1
    )([x_low, x_high, support_in])
    model = keras.Model([x_low, x_high, support_in], [attention_map, patches])

    # Bright where the support is 0: unrestricted, attention goes there.
    support = np.zeros((2, *low), np.float32)
    support[0, :4, :] = 1
    support[1, 2:6, 2:6] = 1
    images_low = (1 - support)[..., None] * 5
    # Each high-res pixel holds the index of its low-res cell.
    cell_index = np.arange(64, dtype=np.float32).reshape(low)
    images_high = np.repeat(np.repeat(cell_index, 4, 0), 4, 1)[None, ..., None]
    images_high = np.repeat(images_high, 2, axis=0)
    seen = np.zeros((2, 64), bool)
    for _ in range(20):
        attention, drawn = model.predict_on_batch([images_low, images_high, support])
        attention = ops.convert_to_numpy(attention)
        drawn = ops.convert_to_numpy(drawn)
        np.testing.assert_allclose(attention.sum(axis=(1, 2)), 1, rtol=1e-5)
        assert np.all(attention[support == 0] == 0)
        centres = drawn[:, :, 2, 2, 0].astype(int)  # the patch's centre pixel
        for b in range(2):
            seen[b, centres[b]] = True
    for b in range(2):
        assert seen[b].any()
        assert np.all(support[b].reshape(-1)[seen[b]] == 1)
