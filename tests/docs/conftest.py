"""The docstring examples are collected on JAX only: they run once, not once
per backend (``test_docstrings.py`` runs another backend's own modules on
that backend, in a subprocess). The README's and the guides' examples run on
every backend."""

import keras
import pytest

collect_ignore = [] if keras.backend.backend() == "jax" else ["test_docstrings.py"]


@pytest.fixture(autouse=True)
def keras_settings_restored():
    """Undo the global Keras settings an example changes (a mixed precision
    policy, a data format, a distribution), so later tests do not see them."""
    floatx = keras.config.floatx()
    data_format = keras.config.image_data_format()
    policy = keras.config.dtype_policy()
    distribution = keras.distribution.distribution()
    yield
    keras.config.set_floatx(floatx)
    keras.config.set_image_data_format(data_format)
    keras.config.set_dtype_policy(policy)
    keras.distribution.set_distribution(distribution)
