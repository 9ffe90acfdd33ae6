"""The original library's ``sample(n_samples, attention, sample_space,
replace=False, use_logits=False)``: accepted with a ``DeprecationWarning``
when ``sample_space`` is the attention's spatial shape, refused with the
modern form otherwise; with ``use_logits=True`` it returns logits, as the
original did. Also the original's own sampling tests, in its call form."""

import warnings
from collections import Counter

import keras
import numpy as np
import pytest
from keras import ops

from ats.core import sample
from ats.core.sampling import sample as sample_from_module


def _np(x):
    return ops.convert_to_numpy(x)


def _attention(rng, shape=(2, 3, 4)):
    a = rng.random(shape).astype("float32")
    return a / a.reshape(shape[0], -1).sum(axis=1).reshape(-1, *[1] * (len(shape) - 1))


def _original(*args, **kwargs):
    """Call ``sample`` expecting exactly one DeprecationWarning."""
    with pytest.warns(DeprecationWarning, match="sample_space") as record:
        result = sample(*args, **kwargs)
    assert len(record) == 1
    assert record[0].filename == __file__  # points at the caller
    return result


def test_the_module_path_is_the_same_function():
    assert sample_from_module is sample


@pytest.mark.parametrize("replace", [False, True])
def test_positional_sample_space_gives_the_modern_draws(rng, replace):
    a = _attention(rng)
    expected = sample(3, a, replace=replace, seed=4)
    for form in (
        lambda: _original(3, a, (3, 4), replace, seed=4),
        lambda: _original(3, a, [3, 4], replace=replace, seed=4),
        lambda: _original(3, a, np.array([3, 4]), replace, False, seed=4),
        lambda: _original(3, a, ops.shape(a)[1:], replace=replace, seed=4),
        lambda: _original(3, a, sample_space=(3, 4), replace=replace, seed=4),
    ):
        positions, sampled = form()
        np.testing.assert_array_equal(_np(positions), _np(expected[0]))
        np.testing.assert_allclose(_np(sampled), _np(expected[1]))


def test_replace_after_sample_space_is_honoured(rng):
    # Without replacement 6 draws from 6 positions are all distinct; with
    # replacement from a peaked distribution they repeat.
    a = np.zeros((1, 6), "float32")
    a[0, 2] = 1
    positions, _ = _original(6, a, (6,), False, seed=0)
    assert sorted(_np(positions)[0, :, 0].tolist()) == list(range(6))
    positions, _ = _original(6, a, (6,), True, seed=0)
    assert (_np(positions) == 2).all()


def test_use_logits_returns_the_logits_in_the_original_form_only(rng):
    logits = rng.normal(size=(3, 5, 4)).astype("float32")
    flat = logits.reshape(3, -1)
    probabilities = np.exp(flat) / np.exp(flat).sum(axis=1, keepdims=True)
    with pytest.warns(DeprecationWarning, match="returns the sampled logits"):
        positions, sampled = sample(4, logits, (5, 4), False, True, seed=2)
    index = _np(positions) @ np.array([4, 1])
    np.testing.assert_allclose(
        _np(sampled), np.take_along_axis(flat, index, axis=1), rtol=1e-6
    )
    # The modern call: the same draws, their probabilities.
    modern_positions, modern_sampled = sample(4, logits, use_logits=True, seed=2)
    np.testing.assert_array_equal(_np(modern_positions), _np(positions))
    np.testing.assert_allclose(
        _np(modern_sampled), np.take_along_axis(probabilities, index, axis=1), rtol=1e-5
    )


def test_modern_calls_do_not_warn(rng):
    a = _attention(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample(2, a, True, False, 3, False)
        sample(2, a, np.bool_(False))
        sample(2, a, replace=True, use_logits=False, seed=1)


def test_a_sample_space_that_is_not_the_attention_shape_is_refused(rng):
    a = _attention(rng)
    for wrong in ((4, 3), (12,), [3, 4, 1]):
        with pytest.raises(ValueError, match=r"spatial shape \(3, 4\)") as error:
            sample(2, a, wrong)
        assert "sample(n_samples, attention, replace=" in str(error.value)


@pytest.mark.parametrize("third", [1, None, "yes", (3.0, 4.0), ("a",)])
def test_a_third_argument_neither_bool_nor_shape_is_refused(rng, third):
    a = _attention(rng)
    with pytest.raises(TypeError, match="`replace` must be a bool") as error:
        sample(2, a, third)
    message = str(error.value)
    assert "sample_space" in message
    assert "sample(n_samples, attention, replace=" in message


def test_ambiguous_or_excess_arguments_are_refused(rng):
    a = _attention(rng)
    with pytest.raises(TypeError, match="multiple values for `replace`"):
        sample(2, a, (3, 4), True, replace=True)
    with pytest.raises(TypeError, match="multiple values for `use_logits`"):
        sample(2, a, (3, 4), True, False, use_logits=False)
    with pytest.raises(TypeError, match="at most 5 positional"):
        sample(2, a, (3, 4), True, False, 3)
    with pytest.raises(TypeError, match="at most 4 positional"):
        sample(2, a, True, False, 3, sample_space=(3, 4))
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(TypeError, match="`use_logits` must be a bool"),
    ):
        sample(2, a, (3, 4), False, 1)


class OriginalSampling(keras.layers.Layer):
    """A layer written as the original's ``SamplePatches.call`` was (with a
    seed generator, which JAX needs)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(0)

    def call(self, attention):
        sample_space = ops.shape(attention)[1:]
        positions, sampled = sample(
            4, attention, sample_space, replace=False, seed=self.seed_generator
        )
        return ops.cast(positions, "float32"), sampled


def test_the_original_form_in_a_compiled_model(rng):
    attention = keras.Input((6, 5))
    a = _attention(rng, (3, 6, 5))
    with pytest.warns(DeprecationWarning):
        model = keras.Model(attention, OriginalSampling()(attention))
        positions, sampled = model.predict(a, verbose=0)
    assert positions.shape == (3, 4, 2) and sampled.shape == (3, 4)
    index = (positions @ np.array([5, 1])).astype(int)
    np.testing.assert_allclose(
        sampled, np.take_along_axis(a.reshape(3, -1), index, axis=1), rtol=1e-6
    )


# The original library's tests/core/test_sampling.py, in its call form.


@pytest.mark.parametrize("replace", [True, False])
def test_original_sampling_consistency(rng, replace):
    x = rng.random((10, 100)).astype("float32")
    x /= x.sum(axis=1, keepdims=True)
    with pytest.warns(DeprecationWarning):
        samples, sampled_attention = sample(10, x, (100,), replace=replace)
    s, sa = _np(samples), _np(sampled_attention)
    for i, row in enumerate(x):
        np.testing.assert_allclose(sa[i], row[s[i, :, 0]])


def test_original_sampling_results_one_hot():
    x = np.zeros((1, 100), "float32")
    x[0, 0] = 1
    with pytest.warns(DeprecationWarning):
        s, _ = sample(10, x, (100,), replace=True)
    assert (_np(s) == 0).all()
    with pytest.warns(DeprecationWarning):
        s, _ = sample(10, x, (100,), replace=False)
    s = _np(s)
    assert s[0, 0] == 0 and (s[0, 1:] != 0).all()


def test_original_sampling_results_uniform():
    x = np.ones((1, 10), "float32") / 10
    with pytest.warns(DeprecationWarning):
        s, _ = sample(10000, x, (10,), replace=True, seed=0)
    counts = Counter(_np(s)[0, :, 0].tolist())
    assert max(counts.values()) - 1000 < 100 and 1000 - min(counts.values()) < 100
    with pytest.warns(DeprecationWarning):
        s, _ = sample(10, x, (10,), replace=False)
    assert len(set(_np(s)[0, :, 0].tolist())) == 10


@pytest.mark.parametrize("replace", [True, False])
def test_original_sampling_2d(rng, replace):
    x = rng.random((1, 10, 10)).astype("float32")
    x /= x.sum()
    with pytest.warns(DeprecationWarning):
        s, _ = sample(10, x, (10, 10), replace=replace)
    assert tuple(s.shape) == (1, 10, 2)
