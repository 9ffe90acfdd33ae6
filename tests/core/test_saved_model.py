"""A model saved as ``.keras`` by an earlier version still loads.

``fixtures/saved_model.keras`` was written by ``fixtures/make_saved_model.py``
on the code before the layout change of issue 11; it holds every
serializable layer of the public API. Its attention map is deterministic
given the weights, so the loaded model must reproduce it.
"""

from pathlib import Path

import keras
import numpy as np

import ats.core
import ats.utils.layers
import ats.utils.regularizers  # noqa: F401

FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_model_saved_before_the_layout_change_loads_and_computes_the_same():
    model = keras.models.load_model(FIXTURES / "saved_model.keras")
    io = np.load(FIXTURES / "saved_model_io.npz")
    y, attention = model.predict([io["x_low"], io["x_high"]], verbose=0)
    np.testing.assert_allclose(attention, io["attention"], rtol=1e-4, atol=1e-6)
    assert y.shape == (2, 3)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)
