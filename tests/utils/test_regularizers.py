"""Tests for ``ats.utils.regularizers`` (run once per Keras backend)."""

import keras
import numpy as np
import pytest
from autodiff import gradients
from keras import ops

from ats.utils.regularizers import MultinomialEntropy, multinomial_entropy


def _value_and_grad(fn, x):
    """``fn(x)`` and its gradient with respect to the numpy array ``x``."""
    value, (grad,) = gradients(fn, x.astype("float32"))
    return float(value), grad


def _np_softmax(logits):
    flat = logits.reshape(len(logits), -1)
    e = np.exp(flat - flat.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(logits.shape)


def _np_loss(x, strength, eps):
    x = x.astype(np.float64)
    return strength * np.sum(x * np.log(x + eps)) / len(x)


def _np_entropy(p):
    p = p.reshape(len(p), -1).astype(np.float64)
    return -np.sum(p * np.log(p), axis=1)


def test_value_matches_numpy(rng):
    p = _np_softmax(rng.normal(size=(3, 5, 7)).astype("float32"))
    for strength, eps in [(1.0, 1e-6), (0.05, 1e-3), (-2.0, 1e-6)]:
        reg = MultinomialEntropy(strength=strength, eps=eps)
        value = ops.convert_to_numpy(reg(p))
        assert value.shape == ()
        np.testing.assert_allclose(
            value, _np_loss(p, strength, eps), rtol=1e-5, atol=1e-7
        )


def test_uniform_distribution_is_minus_strength_log_k():
    k = 64
    p = np.full((4, 8, 8), 1.0 / k, "float32")
    value = float(ops.convert_to_numpy(MultinomialEntropy(0.5, 1e-12)(p)))
    np.testing.assert_allclose(value, -0.5 * np.log(k), rtol=1e-5)


def test_function_returns_equivalent_regularizer(rng):
    reg = multinomial_entropy(strength=0.3, eps=1e-4)
    assert callable(reg)
    assert isinstance(reg, keras.regularizers.Regularizer)
    assert reg.get_config() == {"strength": 0.3, "eps": 1e-4}
    p = _np_softmax(rng.normal(size=(2, 10)).astype("float32"))
    np.testing.assert_allclose(
        ops.convert_to_numpy(reg(p)),
        ops.convert_to_numpy(MultinomialEntropy(0.3, 1e-4)(p)),
        rtol=1e-6,
    )
    # Defaults.
    assert multinomial_entropy().get_config() == {"strength": 1.0, "eps": 1e-6}


@pytest.mark.parametrize("strength", [1.0, -1.0])
def test_gradient_step_changes_entropy_in_expected_direction(rng, strength):
    logits = rng.normal(scale=2.0, size=(4, 6, 6)).astype("float32")
    reg = MultinomialEntropy(strength=strength)

    def loss(t):
        flat = ops.reshape(t, (4, -1))
        return reg(ops.reshape(ops.softmax(flat, axis=-1), (4, 6, 6)))

    value, grad = _value_and_grad(loss, logits)
    p0 = _np_softmax(logits)
    np.testing.assert_allclose(value, _np_loss(p0, strength, 1e-6), rtol=1e-4)
    assert np.all(np.isfinite(grad))

    stepped = logits - 0.5 * grad
    h0, h1 = _np_entropy(p0), _np_entropy(_np_softmax(stepped))
    if strength > 0:
        assert np.all(h1 > h0)  # minimizing the loss spreads the attention
    else:
        assert np.all(h1 < h0)


def test_float16_input_gives_finite_float32_value(rng):
    # Many tiny probabilities: x * log(x) is not representable in float16.
    logits = rng.normal(scale=4.0, size=(2, 64, 64))
    p = _np_softmax(logits).astype("float16")
    value = MultinomialEntropy(strength=1.0)(ops.convert_to_tensor(p))
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    value = float(ops.convert_to_numpy(value))
    assert np.isfinite(value)
    np.testing.assert_allclose(
        value, _np_loss(p.astype("float32"), 1.0, 1e-6), rtol=1e-3
    )


def test_config_and_serialization_round_trip(rng):
    reg = MultinomialEntropy(strength=0.25, eps=1e-5)
    assert reg.get_config() == {"strength": 0.25, "eps": 1e-5}
    assert MultinomialEntropy.from_config(reg.get_config()).get_config() == (
        reg.get_config()
    )

    serialized = keras.saving.serialize_keras_object(reg)
    restored = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(restored, MultinomialEntropy)
    assert restored.get_config() == reg.get_config()

    serialized = keras.regularizers.serialize(reg)
    restored = keras.regularizers.deserialize(serialized)
    assert isinstance(restored, MultinomialEntropy)
    restored = keras.regularizers.get(keras.regularizers.serialize(reg))
    assert isinstance(restored, MultinomialEntropy)

    p = _np_softmax(rng.normal(size=(2, 9)).astype("float32"))
    np.testing.assert_allclose(
        ops.convert_to_numpy(restored(p)), ops.convert_to_numpy(reg(p))
    )


def test_usable_as_keras_activity_regularizer(rng):
    layer = keras.layers.Dense(
        8, activation="softmax", activity_regularizer=multinomial_entropy(0.1)
    )
    x = rng.normal(size=(4, 3)).astype("float32")
    y = ops.convert_to_numpy(layer(x))
    assert len(layer.losses) == 1
    # Keras divides activity regularizers by the batch size once more.
    np.testing.assert_allclose(
        ops.convert_to_numpy(layer.losses[0]),
        _np_loss(y, 0.1, 1e-6) / 4,
        rtol=1e-5,
    )
    restored = keras.layers.Dense.from_config(layer.get_config())
    assert isinstance(restored.activity_regularizer, MultinomialEntropy)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"strength": "1"}, TypeError, "strength"),
        ({"strength": None}, TypeError, "strength"),
        ({"strength": True}, TypeError, "strength"),
        ({"strength": float("nan")}, ValueError, "strength"),
        ({"eps": 0}, ValueError, "eps"),
        ({"eps": -1e-3}, ValueError, "eps"),
        ({"eps": "small"}, TypeError, "eps"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        MultinomialEntropy(**kwargs)
    with pytest.raises(error, match=match):
        multinomial_entropy(**kwargs)
