"""The original library's module paths: ``ats.core.ats_layer``,
``ats.core.builder.ATSBuilder``, the helpers of ``ats.utils``; each warns
with the modern form. The original's tests of ``attention_sampling`` and of
``ATSBuilder`` (``tests/core/test_ats_layer.py``, ``test_builder.py``),
ported to Keras 3."""

import importlib
import warnings

import keras
import numpy as np
import pytest
from keras import layers, ops

import ats.core
from ats.core import FromTensors, MultiResolutionBatch, SamplePatches
from ats.utils.layers import SampleSoftmax

SHAPE_LARGE = (100, 100, 3)
SHAPE_SMALL = (15, 15, 3)
CONV = dict(kernel_size=3, padding="same", activation="relu")


def attention_network():
    return keras.Sequential(
        [
            keras.Input(SHAPE_SMALL),
            layers.Conv2D(8, **CONV),
            layers.MaxPool2D(),
            layers.Conv2D(8, **CONV),
            layers.Conv2D(1, kernel_size=3, padding="same"),
            SampleSoftmax(squeeze_channels=True),
        ]
    )


def feature_network():
    return keras.Sequential(
        [
            keras.Input(SHAPE_SMALL),
            layers.Conv2D(8, **CONV),
            layers.MaxPool2D(),
            layers.Conv2D(16, **CONV),
            layers.MaxPool2D(),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
        ]
    )


def _warns_here(match):
    """Expect one DeprecationWarning naming ``match``, attributed to this file."""

    class Check:
        def __enter__(self):
            self.context = pytest.warns(DeprecationWarning, match=match)
            self.record = self.context.__enter__()
            return self.record

        def __exit__(self, *exc):
            result = self.context.__exit__(*exc)
            if exc[0] is None:
                assert [w.filename for w in self.record] == [__file__]
            return result

    return Check()


@pytest.mark.parametrize("name", ["SamplePatches", "Expectation", "attention_sampling"])
def test_ats_layer_names_are_ats_core_names_and_warn(name):
    module = importlib.import_module("ats.core.ats_layer")
    with _warns_here(f"from ats.core import {name}"):
        value = getattr(module, name)
    assert value is getattr(ats.core, name)


def test_from_ats_layer_import_warns_once():
    with _warns_here("from ats.core import attention_sampling"):
        from ats.core.ats_layer import attention_sampling
    assert attention_sampling is ats.core.attention_sampling


def test_ats_layer_has_nothing_else():
    module = importlib.import_module("ats.core.ats_layer")
    with pytest.raises(AttributeError, match="import them from ats.core"):
        module.sample  # noqa: B018


def test_original_ats_layer_model_fits():
    """The original's tests/core/test_ats_layer.py."""
    with pytest.warns(DeprecationWarning):
        from ats.core.ats_layer import attention_sampling
    x_full = keras.Input(SHAPE_LARGE)
    x_small = keras.Input(SHAPE_SMALL)
    attention_model = attention_network()
    feature_model = feature_network()
    feature, attention, patches = attention_sampling(
        attention_model,
        feature_model,
        (15, 15),
        attention_regularizer=lambda x: ops.sum(x),
    )([x_small, x_full])
    model = keras.Model(inputs=[x_small, x_full], outputs=[feature])
    rng = np.random.default_rng(0)
    x = [rng.random((10, *SHAPE_SMALL)), rng.random((10, *SHAPE_LARGE))]
    assert model.predict(x, verbose=0).shape == (10, 64)
    model.compile("sgd", "mse")
    history = model.fit(x, rng.random((10, 64)), verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert len(model.trainable_weights) == len(attention_model.trainable_weights) + len(
        feature_model.trainable_weights
    )


@pytest.mark.parametrize("replace", [False, True])
def test_original_builder_builds_the_model(replace):
    """The original's tests/core/test_builder.py."""
    from ats.core.builder import ATSBuilder

    x_full = keras.Input(SHAPE_LARGE)
    x_small = keras.Input(SHAPE_SMALL)
    targets = keras.Input((1,))
    with _warns_here("attention_sampling"):
        builder = ATSBuilder()
    builder = (
        builder.from_tensors([x_small, x_full], targets)
        .attention(attention_network())
        .feature(feature_network())
        .patch_size(SHAPE_SMALL[:2])
        .n_patches(10)
        .attention_receptive_field(2)
    )
    builder = (
        builder.sample_with_replacement()
        if replace
        else builder.sample_without_replacement()
    )
    result = builder.get()
    inputs, outputs, result_targets, attention, patches = result
    assert inputs == [] and result_targets is targets
    assert tuple(outputs.shape) == (None, 64)
    assert tuple(attention.shape) == (None, 7, 7)
    assert tuple(patches.shape) == (None, 10, 15, 15, 3)

    model = keras.Model([x_full, x_small], [result.outputs])
    samplers = [layer for layer in model.layers if isinstance(layer, SamplePatches)]
    assert [(s.replace, s.receptive_field, s.n_patches) for s in samplers] == [
        (replace, 2, 10)
    ]
    rng = np.random.default_rng(0)
    y = model.predict(
        [rng.random((1, *SHAPE_LARGE)), rng.random((1, *SHAPE_SMALL))], verbose=0
    )
    assert y.shape == (1, 64) and np.isfinite(y).all()


def test_builder_sample_with_keyword():
    from ats.core.builder import ATSBuilder

    with pytest.warns(DeprecationWarning):
        builder = ATSBuilder()
    assert builder.sample_with(replacement=True)._replace is True
    assert builder.sample_with(replacement=False)._replace is False
    with pytest.raises(TypeError, match="`replacement` must be a bool"):
        builder.sample_with(replacement="yes")


def test_builder_refuses_what_it_cannot_build():
    from ats.core.builder import ATSBuilder

    with pytest.warns(DeprecationWarning):
        builder = ATSBuilder()
    with pytest.raises(ValueError, match=r"`\.from_tensors\(\.\.\.\)`.*`\.n_patches"):
        builder.attention(attention_network()).get()

    class Custom(MultiResolutionBatch):
        pass

    with pytest.raises(TypeError, match="ats.core.FromTensors, got Custom"):
        builder.from_batch(Custom())
    x = [keras.Input(SHAPE_SMALL), keras.Input(SHAPE_LARGE)]
    assert builder.from_batch(FromTensors(x)) is builder


@pytest.mark.parametrize(
    "name, modern, dtype",
    [
        ("to_float32", 'keras.ops.cast(x, "float32")', "float32"),
        ("to_float16", 'keras.ops.cast(x, "float16")', "float16"),
        ("to_double", 'keras.ops.cast(x, "float64")', "float64"),
        ("to_int32", 'keras.ops.cast(x, "int32")', "int32"),
        ("to_int8", 'keras.ops.cast(x, "int8")', "int8"),
    ],
)
def test_original_utils_casts_warn_and_cast(name, modern, dtype):
    import ats.utils

    with _warns_here(modern.replace("(", r"\(").replace(")", r"\)")):
        helper = getattr(ats.utils, name)
    x = np.array([1.7, 2.0])
    # (JAX without x64 casts to float64 as float32: compare with keras's cast.)
    assert helper(x).dtype == ops.cast(x, dtype).dtype


def test_original_utils_helpers():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        from ats.utils import expand_many, to_dtype, to_tensor
    assert [w.filename for w in record] == [__file__] * 3
    assert tuple(expand_many(np.ones((2, 3)), [0, -1]).shape) == (1, 2, 3, 1)
    y = to_dtype(np.ones(2), type="int", width=8, sign=False)
    assert keras.backend.standardize_dtype(y.dtype) == "uint8"
    assert keras.backend.standardize_dtype(to_tensor([1, 2]).dtype) == "int32"
    import ats.utils

    with pytest.raises(AttributeError, match="no attribute 'to_float128'"):
        ats.utils.to_float128  # noqa: B018
