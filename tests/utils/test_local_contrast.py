"""``LocalContrast``: the attention's content prior, on every backend."""

import keras
import numpy as np
import pytest
from keras import ops

from ats.utils.layers import LocalContrast


def _reference(images, radius, strength, epsilon=1e-6):
    """numpy: |gray - mean of its reflected (2r+1)^2 window| / (max + eps)."""
    gray = images.astype("float64").mean(axis=-1)
    padded = np.pad(gray, [(0, 0), (radius, radius), (radius, radius)], "reflect")
    window = 2 * radius + 1
    h, w = gray.shape[1:]
    mean = np.zeros_like(gray)
    for dy in range(window):
        for dx in range(window):
            mean += padded[:, dy : dy + h, dx : dx + w]
    contrast = np.abs(gray - mean / window**2)
    largest = contrast.max(axis=(1, 2), keepdims=True)
    return (strength * contrast / (largest + epsilon))[..., None]


@pytest.mark.parametrize("radius", [1, 2])
def test_local_contrast_matches_its_definition(radius, rng):
    images = rng.random((3, 11, 8, 3)).astype("float32")
    out = ops.convert_to_numpy(LocalContrast(radius, strength=2.5)(images))
    np.testing.assert_allclose(out, _reference(images, radius, 2.5), atol=1e-5)


def test_a_spot_is_the_most_contrasted_and_borders_are_not_edges():
    images = np.full((1, 9, 9, 1), 0.5, "float32")
    images[0, 4, 4, 0] = 0.0
    out = ops.convert_to_numpy(LocalContrast(1)(images))[0, ..., 0]
    assert np.unravel_index(out.argmax(), out.shape) == (4, 4)
    assert out[0].max() == 0 and out[:, 0].max() == 0  # reflected borders
    flat = ops.convert_to_numpy(LocalContrast(2)(np.ones((2, 6, 6, 3), "float32")))
    assert np.all(flat == 0) and np.all(np.isfinite(flat))


def test_local_contrast_is_checked_and_serializes():
    with pytest.raises(ValueError, match="radius"):
        LocalContrast(0)
    with pytest.raises(ValueError, match="strength"):
        LocalContrast(strength=-1)
    with pytest.raises(ValueError, match="batch of images"):
        LocalContrast()(np.zeros((2, 5, 5), "float32"))
    layer = LocalContrast(3, strength=4.0)
    clone = LocalContrast.from_config(layer.get_config())
    assert (clone.radius, clone.strength) == (3, 4.0)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert isinstance(restored, LocalContrast)


def test_the_prior_steers_an_untrained_attention_to_structures():
    from ats.models.classifier import attention_network

    keras.utils.set_random_seed(0)
    images = np.full((1, 24, 24, 1), 0.6, "float32")
    images[0, 5:7, 17:19, 0] = 0.0  # one small dark object
    spot = np.zeros((24, 24), bool)
    spot[4:8, 16:20] = True
    plain = ops.convert_to_numpy(attention_network(4)(images))[0]
    prior = attention_network(4, prior_strength=12.0, channels=1)
    steered = ops.convert_to_numpy(prior(images))[0]
    assert plain[spot].sum() < 0.1
    assert steered[spot].sum() > 0.5
    assert np.isclose(steered.sum(), 1, atol=1e-4)
