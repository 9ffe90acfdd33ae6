"""``model.save()`` + ``keras.models.load_model()`` keeps the sampler's state.

``SamplePatches`` draws from its own ``keras.random.SeedGenerator``, whose
state advances at every call. The saved model holds that state, so the
reloaded model draws the patches the original would draw next and predicts
what it predicts.
"""

from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from ats.core import SamplePatches, attention_sampling
from ats.utils.layers import SampleSoftmax

FIXTURES = Path(__file__).parents[1] / "fixtures"


def small_model(seed):
    x_low, x_high = keras.Input((8, 8, 1)), keras.Input((32, 32, 1))
    attention = keras.Sequential(
        [
            keras.layers.Conv2D(1, 3, padding="same"),
            SampleSoftmax(squeeze_channels=True),
        ]
    )
    feature = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(4)]
    )
    features, _, _ = attention_sampling(
        attention, feature, patch_size=(4, 4), n_patches=3, seed=seed
    )([x_low, x_high])
    return keras.Model([x_low, x_high], keras.layers.Dense(2)(features))


def batch(rng):
    return [
        rng.random((4, 8, 8, 1)).astype("float32"),
        rng.random((4, 32, 32, 1)).astype("float32"),
    ]


def seed_state(model):
    (sampler,) = [layer for layer in model.layers if isinstance(layer, SamplePatches)]
    return ops.convert_to_numpy(sampler.seed_generator.state)


@pytest.mark.parametrize("seed", [3, None])
def test_reloaded_model_predicts_what_the_original_would(seed, tmp_path, rng):
    model = small_model(seed)
    x = batch(rng)
    first = model.predict(x, verbose=0)
    second = model.predict(x, verbose=0)
    assert not np.allclose(first, second)  # the predictions depend on the draws
    model.save(tmp_path / "model.keras")

    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(seed_state(loaded), seed_state(model))
    for _ in range(3):
        np.testing.assert_allclose(
            loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
        )
    np.testing.assert_array_equal(seed_state(loaded), seed_state(model))


def test_weights_files_keep_the_seed_state_too(tmp_path, rng):
    model = small_model(3)
    x = batch(rng)
    model.predict(x, verbose=0)
    model.save_weights(tmp_path / "model.weights.h5")
    other = small_model(3)
    other.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(seed_state(other), seed_state(model))
    np.testing.assert_allclose(
        other.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )


def test_a_layer_saved_without_its_seed_state_loads_with_its_seed():
    """What a model saved before the state was saved holds for the layer:
    no variables. It loads, with the state its ``seed`` argument gives."""
    layer = SamplePatches(3, (4, 4), seed=5)
    layer.load_own_variables({})
    np.testing.assert_array_equal(
        ops.convert_to_numpy(layer.seed_generator.state), [5, 0]
    )


def test_the_committed_model_saved_without_the_seed_state_loads():
    """``tests/fixtures/saved_model.keras`` was saved by an earlier version
    (``seed=7``, no seed state in the file): its sampler starts from the
    state of its seed."""
    model = keras.models.load_model(FIXTURES / "saved_model.keras")
    np.testing.assert_array_equal(seed_state(model), [7, 0])
