"""Shared test set-up: the suite runs once per backend (``KERAS_BACKEND``)."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.fixture
def backend():
    """The name of the Keras backend this run tests."""
    return keras.backend.backend()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
