"""Slow end-to-end tests whose subject is not backend-specific run on JAX
only (the suite runs once per backend)."""

import keras

collect_ignore = (
    [] if keras.backend.backend() == "jax" else ["test_your_data_resume.py"]
)
